"""Signing under concurrency: once per citizen, every signature counted, one event per crossing."""

from __future__ import annotations

import asyncio
from collections import Counter

from core.identity.national_id import national_id_hash
from core.observability import keys as observability_keys
from core.plugin_host import keys as plugin_host_keys
from plugins.kazakhstan.iin import synthetic_iin
from tests.support.identities import IIN_SECRET
from tests.support.petitions import (
    SMALL_FIGURES,
    SMALL_THRESHOLDS,
    THRESHOLD,
    EventRecorder,
    thresholds,
)


async def test_a_signer_repeating_after_the_threshold_is_told_already_signed_not_409(
    make_client, database_url, approved_petition, sign
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    petition = await approved_petition(client)
    for n in range(1, THRESHOLD + 1):
        assert (await sign(client, petition["id"], n)).status == 201
    repeat = await sign(client, petition["id"], THRESHOLD)
    assert repeat.status == 200
    assert await repeat.json() == {
        "petition_id": petition["id"],
        "signature_count": THRESHOLD,
        "status": "awaiting_response",
        "already_signed": True,
    }
    newcomer = await sign(client, petition["id"], THRESHOLD + 1)
    assert newcomer.status == 409


async def test_the_same_citizen_signing_again_gets_200_and_the_count_stays(
    client, approved_petition, read_back, sign
) -> None:
    petition = await approved_petition(client)

    first = await sign(client, petition["id"], 7)
    again = await sign(client, petition["id"], 7)

    assert first.status == 201
    assert await first.json() == {
        "petition_id": petition["id"],
        "signature_count": 1,
        "status": "restricted",
        "already_signed": False,
    }
    assert again.status == 200
    assert await again.json() == {
        "petition_id": petition["id"],
        "signature_count": 1,
        "status": "restricted",
        "already_signed": True,
    }
    assert (await read_back(client, petition["id"]))["signature_count"] == 1


async def test_fifty_concurrent_signatures_by_one_citizen_count_once(
    client, approved_petition, sign, signature_hashes, stored_petition
) -> None:
    petition = await approved_petition(client)

    responses = await asyncio.gather(*(sign(client, petition["id"], 8) for _ in range(50)))

    assert Counter(r.status for r in responses) == {201: 1, 200: 49}
    receipts = [await r.json() for r in responses]
    assert [r["already_signed"] for r in receipts].count(False) == 1
    assert {r["signature_count"] for r in receipts} == {1}
    assert (await stored_petition(client, petition["id"])).signature_count == 1
    assert await signature_hashes(client, petition["id"]) == [
        national_id_hash(synthetic_iin(8), IIN_SECRET.encode())
    ]


async def test_two_hundred_concurrent_citizens_are_each_counted_once(
    client, approved_petition, sign, signature_hashes, stored_petition
) -> None:
    signers = 200
    petition = await approved_petition(client)
    assert petition["threshold"] > signers

    responses = await asyncio.gather(
        *(sign(client, petition["id"], 1_000 + n) for n in range(signers))
    )

    assert Counter(r.status for r in responses) == {201: signers}
    counts = [(await r.json())["signature_count"] for r in responses]
    assert all(1 <= count <= signers for count in counts)
    assert max(counts) == signers
    assert (await stored_petition(client, petition["id"])).signature_count == signers
    hashes = await signature_hashes(client, petition["id"])
    assert len(hashes) == signers
    assert set(hashes) == {
        national_id_hash(synthetic_iin(1_000 + n), IIN_SECRET.encode()) for n in range(signers)
    }


async def test_a_burst_across_minimum_and_threshold_ends_awaiting_with_one_threshold_event(
    make_client, database_url, approved_petition, sign, signature_hashes, stored_petition
) -> None:
    recorder = EventRecorder()
    client = await make_client(
        database_url,
        kazakhstan=SMALL_THRESHOLDS,
        petitions=SMALL_FIGURES,
        extra_plugins=(recorder,),
    )
    petition = await approved_petition(client)
    burst = 40

    responses = await asyncio.gather(
        *(sign(client, petition["id"], 2_000 + n) for n in range(burst))
    )
    await client.app[plugin_host_keys.EVENTS].drain()

    statuses = Counter(r.status for r in responses)
    assert set(statuses) <= {201, 409}
    accepted = statuses[201]
    assert accepted >= THRESHOLD
    stored = await stored_petition(client, petition["id"])
    assert stored.status == "awaiting_response"
    assert stored.signature_count == accepted == len(await signature_hashes(client, petition["id"]))
    assert stored.threshold_reached_at is not None
    reached = recorder.named("petition.threshold_reached")
    assert len(reached) == 1
    assert reached[0].subject_id == petition["id"]
    assert THRESHOLD <= reached[0].payload["signature_count"] <= accepted
    assert len(recorder.named("petition.published")) <= 1
    for response in responses:
        if response.status == 409:
            assert (await response.json())["petition_status"] == "awaiting_response"


async def test_a_third_party_plugin_sees_every_lifecycle_event_in_order(
    make_client, database_url, answer, approved_petition, sign
) -> None:
    recorder = EventRecorder()
    client = await make_client(
        database_url,
        kazakhstan=SMALL_THRESHOLDS,
        petitions=SMALL_FIGURES,
        extra_plugins=(recorder,),
    )
    petition = await approved_petition(client)
    for n in range(THRESHOLD):
        assert (await sign(client, petition["id"], 3_000 + n)).status == 201
    assert (await answer(client, petition["id"])).status == 200
    await client.app[plugin_host_keys.EVENTS].drain()

    assert [(e.name, e.subject_id) for e in recorder.events] == [
        (name, petition["id"])
        for name in (
            "petition.filed",
            "petition.approved",
            "petition.published",
            "petition.threshold_reached",
            "petition.answered",
        )
    ]


async def test_a_signature_counts_for_one_petition_only(
    client, approved_petition, sign, stored_petition
) -> None:
    first = await approved_petition(client)
    second = await approved_petition(client)

    assert (await sign(client, first["id"], 9)).status == 201
    assert (await sign(client, second["id"], 9)).status == 201

    assert (await stored_petition(client, first["id"])).signature_count == 1
    assert (await stored_petition(client, second["id"])).signature_count == 1


async def test_the_signature_counter_metric_counts_new_signatures_only(
    client, approved_petition, sign
) -> None:
    petition = await approved_petition(client)
    registry = client.app[observability_keys.METRICS].registry
    before = registry.get_sample_value("qatysu_petition_signatures_total") or 0.0

    await sign(client, petition["id"], 5)
    await sign(client, petition["id"], 5)
    await sign(client, petition["id"], 6)

    assert registry.get_sample_value("qatysu_petition_signatures_total") - before == 2


async def test_two_servers_sharing_a_database_count_each_citizen_once_and_announce_once(
    make_client, database_url, approved_petition, sign, signature_hashes, stored_petition
) -> None:
    recorder = EventRecorder()
    figures = {"petitions": SMALL_FIGURES, "kazakhstan": thresholds(60)}
    first = await make_client(database_url, **figures, extra_plugins=(recorder,))
    second = await make_client(database_url, **figures, extra_plugins=(recorder,))
    petition = await approved_petition(first)
    citizens = range(4_000, 4_080)

    responses = await asyncio.gather(
        *(sign(server, petition["id"], n) for n in citizens for server in (first, second))
    )
    await first.app[plugin_host_keys.EVENTS].drain()
    await second.app[plugin_host_keys.EVENTS].drain()

    statuses = Counter(r.status for r in responses)
    assert set(statuses) <= {200, 201, 409}
    stored = await stored_petition(first, petition["id"])
    hashes = await signature_hashes(first, petition["id"])
    assert stored.status == "awaiting_response"
    assert stored.signature_count == statuses[201] == len(hashes) == len(set(hashes))
    assert len(recorder.named("petition.threshold_reached")) == 1


async def test_signatures_for_several_petitions_in_one_burst_are_answered_each_on_its_own(
    make_client, database_url, approved_petition, file_petition, sign, stored_petition
) -> None:
    client = await make_client(database_url, kazakhstan=SMALL_THRESHOLDS, petitions=SMALL_FIGURES)
    collecting = await approved_petition(client)
    in_moderation = await file_petition(client)

    responses = await asyncio.gather(
        *(sign(client, collecting["id"], 5_000 + n) for n in range(2)),
        sign(client, in_moderation["id"], 5_000),
        sign(client, "no-such-petition", 5_000),
        sign(client, collecting["id"], 5_000),
    )

    first_signer, second_signer, moderation, unknown, first_signer_again = responses
    assert sorted([first_signer.status, first_signer_again.status]) == [200, 201]
    assert second_signer.status == 201
    assert moderation.status == 404
    assert unknown.status == 404
    assert (await stored_petition(client, collecting["id"])).signature_count == 2
    assert (await stored_petition(client, in_moderation["id"])).signature_count == 0
