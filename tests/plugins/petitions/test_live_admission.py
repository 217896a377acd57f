"""Live streams and admission: caps, refusal under overload, no slot held, drain."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from core.admission import keys as admission_keys
from core.admission.kernel import StandingWait
from core.observability import keys as observability_keys
from plugins.petitions.state import STATE
from tests.support.live import EventReader
from tests.support.petitions import SMALL_FIGURES, SMALL_THRESHOLDS, petition_url

FAST = {**SMALL_FIGURES, "live_interval_seconds": 0.2}
ADMISSION = {"enabled": True}


async def open_stream(client: Any, petition_id: str) -> EventReader:
    response = await client.get(petition_url(petition_id, "/live"))
    assert response.status == 200, await response.text()
    reader = EventReader(response)
    assert (await reader.next_named("count")) is not None
    return reader


async def test_a_stream_past_the_per_address_cap_is_429(make_client, approved_petition) -> None:
    client = await make_client(
        kazakhstan=SMALL_THRESHOLDS,
        petitions={**FAST, "live_max_streams_per_address": 2},
        admission=ADMISSION,
    )
    petition = await approved_petition(client)
    await open_stream(client, petition["id"])
    await open_stream(client, petition["id"])

    refused = await client.get(petition_url(petition["id"], "/live"))

    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    assert refused.headers["Retry-After"] == "5"
    assert client.app[STATE].live.open == 2


async def test_a_stream_past_the_process_cap_is_503_with_retry_after(
    make_client, approved_petition
) -> None:
    client = await make_client(
        kazakhstan=SMALL_THRESHOLDS, petitions={**FAST, "live_max_streams": 1}, admission=ADMISSION
    )
    petition = await approved_petition(client)
    await open_stream(client, petition["id"])

    refused = await client.get(petition_url(petition["id"], "/live"))

    assert refused.status == 503
    assert refused.headers["Retry-After"] == "5"
    assert (await refused.json())["detail"].endswith("(live-process); try again shortly")


async def test_under_overload_new_streams_are_refused_but_reads_and_signatures_pass(
    make_client, approved_petition, sign, monkeypatch
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST, admission=ADMISSION)
    petition = await approved_petition(client)
    pie = client.app[admission_keys.ADMISSION].pie
    # A small measured overload: the edge would refuse only a few reads, every new stream.
    monkeypatch.setattr(pie, "update", lambda delay, elapsed=None: 0.01)
    pie.probability = 0.01

    refused = await client.get(petition_url(petition["id"], "/live"))
    signed = await sign(client, petition["id"], 1)

    assert refused.status == 503
    assert refused.headers["Retry-After"] == "2"
    assert signed.status == 201
    rejected = client.app[observability_keys.METRICS].admission_rejected
    assert rejected.labels("live_overload", "sheddable")._value.get() == 1


async def test_while_a_wait_stands_in_the_kernels_queue_new_streams_are_refused(
    make_client, approved_petition, sign, monkeypatch
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST, admission=ADMISSION)
    petition = await approved_petition(client)
    # Held standing, whatever the observer's ticks measure on this machine meanwhile.
    monkeypatch.setattr(StandingWait, "update", lambda self, now, queue_length: True)
    client.app[admission_keys.ADMISSION].kernel_standing.standing = True

    refused = await client.get(petition_url(petition["id"], "/live"))
    signed = await sign(client, petition["id"], 1)

    assert refused.status == 503
    assert signed.status == 201


async def test_open_streams_hold_no_concurrency_slot(make_client, approved_petition) -> None:
    client = await make_client(
        kazakhstan=SMALL_THRESHOLDS,
        petitions=FAST,
        admission={**ADMISSION, "fixed_limit": 1, "max_inflight_per_address": 1},
    )
    petition = await approved_petition(client)
    await open_stream(client, petition["id"])
    await open_stream(client, petition["id"])

    read = await client.get(petition_url(petition["id"]))

    assert read.status == 200
    assert client.app[admission_keys.ADMISSION].controller.total_inflight == 0


async def test_open_streams_end_with_a_shutdown_event_on_drain(
    make_client, approved_petition
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    petition = await approved_petition(client)
    url = client.make_url(petition_url(petition["id"], "/live"))
    async with aiohttp.ClientSession() as session:
        response = await session.get(url)
        reader = EventReader(response)
        assert (await reader.next_named("count")) is not None

        closing = asyncio.create_task(client.server.close())
        rest = await reader.rest(within=5.0)
        await asyncio.wait_for(closing, timeout=10.0)

    assert [event.name for event in rest] == ["shutdown"]


async def test_a_drop_probability_decayed_near_zero_refuses_no_stream(
    make_client, approved_petition, monkeypatch
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST, admission=ADMISSION)
    petition = await approved_petition(client)
    pie = client.app[admission_keys.ADMISSION].pie
    # PIE decays by a factor each tick once calm: it stays above zero long after an overload.
    monkeypatch.setattr(pie, "update", lambda delay, elapsed=None: 1e-9)
    pie.probability = 1e-9

    reader = await open_stream(client, petition["id"])

    assert client.app[STATE].live.open == 1
    reader.response.close()
