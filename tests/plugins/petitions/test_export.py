"""The CSV export of the petition list's public counts."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.support.identities import moderator
from tests.support.petitions import BASE, thresholds
from tests.support.problems import problem

EXPORT = f"{BASE}.csv"
FIGURES: dict[str, Any] = {
    "co_signer_minimum": 1,
    "default_page_size": 2,
    "max_page_size": 3,
}


@pytest.fixture
async def export_client(make_client: Any, database_url: str) -> Any:
    return await make_client(database_url, kazakhstan=thresholds(1_000), petitions=FIGURES)


def parsed(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_the_export_lists_each_public_petitions_counts_in_the_lists_order(
    export_client: Any, approved_petition: Any, sign_by: Any
) -> None:
    first = await approved_petition(export_client, addressee="government")
    await sign_by(export_client, first["id"], range(100, 103))
    second = await approved_petition(export_client, addressee="almaty-akimat")
    await sign_by(export_client, second["id"], [100])

    response = await export_client.get(EXPORT, params={"sort": "signatures"})

    assert response.status == 200
    assert response.content_type == "text/csv"
    assert response.charset == "utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="petitions.csv"'
    text = await response.text()
    assert text.startswith(
        "id,title,addressee,status,signature_count,threshold,created_at,threshold_reached_at\r\n"
    )
    rows = parsed(text)
    assert [(r["id"], r["addressee"], r["signature_count"], r["threshold"]) for r in rows] == [
        (first["id"], "government", "3", "1000"),
        (second["id"], "almaty-akimat", "1", "1000"),
    ]
    assert rows[0]["status"] == "public"
    assert rows[0]["title"] == first["title"]
    assert rows[0]["created_at"] == first["created_at"]
    assert rows[0]["threshold_reached_at"] == ""


async def test_the_export_pages_with_link_headers_like_the_list(
    export_client: Any, approved_petition: Any, sign_by: Any
) -> None:
    made = set()
    for _ in range(3):
        petition = await approved_petition(export_client)
        await sign_by(export_client, petition["id"], [100])
        made.add(petition["id"])
    first = await export_client.get(EXPORT)
    second = await export_client.get(first.links["next"]["url"].path_qs)
    assert "next" not in second.links
    rows = parsed(await first.text()) + parsed(await second.text())
    assert {row["id"] for row in rows} == made


async def test_a_title_a_spreadsheet_would_run_as_a_formula_is_made_inert(
    export_client: Any, approved_petition: Any, sign_by: Any
) -> None:
    petition = await approved_petition(export_client, title='=HYPERLINK("http://x", "click")')
    await sign_by(export_client, petition["id"], [100])
    rows = parsed(await (await export_client.get(EXPORT)).text())
    assert rows[0]["title"] == '\'=HYPERLINK("http://x", "click")'


async def test_petitions_the_public_does_not_see_are_exported_only_to_moderators(
    export_client: Any, file_petition: Any
) -> None:
    petition = await file_petition(export_client)
    refused = await export_client.get(EXPORT, params={"status": "moderation"})
    assert (await problem(refused, 403))["type"] == "/problems/forbidden"
    allowed = await export_client.get(EXPORT, params={"status": "moderation"}, headers=moderator())
    assert [row["id"] for row in parsed(await allowed.text())] == [petition["id"]]
    assert parsed(await (await export_client.get(EXPORT)).text()) == []


async def test_a_bad_filter_is_a_problem_not_csv(export_client: Any) -> None:
    response = await export_client.get(EXPORT, params={"sort": "nonsense"})
    assert (await problem(response, 422))["type"] == "/problems/validation"
