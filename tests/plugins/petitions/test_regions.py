"""The map: region claims recorded against the register, thresholds, the CSV, the stream."""

from __future__ import annotations

import csv
import io
from typing import Any

from plugins.kazakhstan.iin import synthetic_iin
from tests.support.identities import auth, token
from tests.support.live import EventReader
from tests.support.petitions import SMALL_FIGURES, petition_url, thresholds

FIGURES = {**SMALL_FIGURES, "region_minimum": 3}
REGION_CLAIM = {"region_claim": "kz_region"}


def citizen_in(n: int, region: str | None) -> dict[str, str]:
    claims = {} if region is None else {"kz_region": region}
    return auth(token("citizen", synthetic_iin(n), name="Aigerim Sadykova", **claims))


async def sign_from(client: Any, petition_id: str, regions: list[str | None]) -> None:
    for n, region in enumerate(regions, start=1):
        response = await client.post(
            petition_url(petition_id, "/signatures"), headers=citizen_in(n, region)
        )
        assert response.status == 201, await response.text()


SIGNERS = ["almaty"] * 4 + ["astana"] * 3 + ["shymkent"] * 2 + ["atlantis", None]


async def test_regions_under_the_minimum_are_merged_into_other(
    make_client, database_url, approved_petition
) -> None:
    client = await make_client(
        database_url, kazakhstan=thresholds(1_000), petitions=FIGURES, identity=REGION_CLAIM
    )
    petition = await approved_petition(client)
    await sign_from(client, petition["id"], SIGNERS)

    response = await client.get(petition_url(petition["id"], "/regions"))

    assert response.status == 200
    body = await response.json()
    assert [(r["code"], r["signatures"]) for r in body["regions"]] == [
        ("almaty", 4),
        ("astana", 3),
    ]
    assert body["regions"][0]["names"]["en"] == "Almaty"
    # Shymkent's two, an unknown code and no claim at all: none is shown on its own.
    assert body["other"] == 4
    assert body["total"] == 11
    assert body["minimum"] == 3


async def test_without_a_configured_claim_no_region_is_recorded(
    make_client, approved_petition
) -> None:
    client = await make_client(kazakhstan=thresholds(1_000), petitions=FIGURES)
    petition = await approved_petition(client)
    await sign_from(client, petition["id"], ["almaty"] * 4)

    body = await (await client.get(petition_url(petition["id"], "/regions"))).json()

    assert body["regions"] == []
    assert body["other"] == 4


async def test_the_csv_export_applies_the_same_minimum(make_client, approved_petition) -> None:
    client = await make_client(
        kazakhstan=thresholds(1_000), petitions=FIGURES, identity=REGION_CLAIM
    )
    petition = await approved_petition(client)
    await sign_from(client, petition["id"], SIGNERS)

    response = await client.get(petition_url(petition["id"], "/regions.csv"))

    assert response.status == 200
    assert response.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == ["region", "name_kk", "name_ru", "name_en", "signatures"]
    assert [(row[0], row[3], row[4]) for row in rows[1:]] == [
        ("almaty", "Almaty", "4"),
        ("astana", "Astana", "3"),
        ("other", "", "4"),
    ]


async def test_a_petition_in_moderation_has_no_map(make_client, file_petition) -> None:
    client = await make_client(kazakhstan=thresholds(1_000), petitions=FIGURES)
    petition = await file_petition(client)

    for suffix in ("/regions", "/regions.csv"):
        response = await client.get(petition_url(petition["id"], suffix))
        assert response.status == 404
        assert response.content_type == "application/problem+json"


async def test_region_counts_come_in_the_stream_too(make_client, approved_petition) -> None:
    client = await make_client(
        kazakhstan=thresholds(1_000),
        petitions={
            **FIGURES,
            "live_interval_seconds": 0.1,
            "live_regions_interval_seconds": 0.2,
        },
        identity=REGION_CLAIM,
    )
    petition = await approved_petition(client)
    await sign_from(client, petition["id"], SIGNERS)
    response = await client.get(petition_url(petition["id"], "/live"))
    reader = EventReader(response)

    event = await reader.next_named("regions", within=3.0)

    assert event is not None
    assert [(r["code"], r["signatures"]) for r in event.data["regions"]] == [
        ("almaty", 4),
        ("astana", 3),
    ]
    assert event.data["other"] == 4
