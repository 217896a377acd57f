from __future__ import annotations

import datetime as dt

import pytest

from tests.support.consultations import BASE, DRAFT, now, window
from tests.support.identities import agency, citizen, moderator
from tests.support.metrics import events_emitted


async def test_an_agency_opens_a_consultation_with_sections_numbered_in_order(client, read) -> None:
    response = await client.post(BASE, json={**DRAFT, **window()}, headers=agency("astana-akimat"))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert response.headers["Location"] == f"{BASE}/{body['id']}"
    assert body["agency"] == "astana-akimat"
    assert body["status"] == "open"
    assert body["title"] == DRAFT["title"]
    assert body["sections"] == [
        {
            "number": 1,
            "heading": "General provisions",
            "text": "These Rules set how parents apply.",
        },
        {"number": 2, "heading": "Applications", "text": "An application is filed online."},
        {
            "number": 3,
            "heading": None,
            "text": "Places are offered in the order applications were filed.",
        },
    ]
    assert body["votes"] == {"support": 0, "oppose": 0, "neutral": 0}
    assert body["comment_count"] == 0
    assert body["report"] is None
    assert body["report_published_at"] is None
    assert await read(client, body["id"]) == body


async def test_given_section_numbers_order_the_sections(client, open_consultation) -> None:
    sections = [
        {"number": 2, "text": "second"},
        {"number": 3, "text": "third"},
        {"number": 1, "text": "first"},
    ]
    body = await open_consultation(client, sections=sections)
    assert [(s["number"], s["text"]) for s in body["sections"]] == [
        (1, "first"),
        (2, "second"),
        (3, "third"),
    ]


async def test_a_consultation_opening_later_is_upcoming(client, open_consultation) -> None:
    body = await open_consultation(client, **window(opens_in=dt.timedelta(days=1)))
    assert body["status"] == "upcoming"


async def test_opening_needs_a_token(client) -> None:
    response = await client.post(BASE, json={**DRAFT, **window()})
    assert response.status == 401


@pytest.mark.parametrize("headers", [citizen(1), moderator()])
async def test_only_an_agency_opens_a_consultation(client, headers) -> None:
    response = await client.post(BASE, json={**DRAFT, **window()}, headers=headers)
    assert response.status == 403


async def test_closing_before_opening_is_refused(client) -> None:
    opens_at = now() + dt.timedelta(days=20)
    times = {
        "opens_at": opens_at.isoformat(),
        "closes_at": (opens_at - dt.timedelta(days=1)).isoformat(),
    }
    response = await client.post(BASE, json={**DRAFT, **times}, headers=agency())
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "closes_at", "message": "must be after opens_at"}
    ]


async def test_a_discussion_shorter_than_ten_days_is_refused(client) -> None:
    response = await client.post(BASE, json={**DRAFT, **window(days=9.9)}, headers=agency())
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {
            "field": "closes_at",
            "message": "the discussion must last at least 10 calendar days from when it opens",
        }
    ]


async def test_a_backdated_opening_does_not_shorten_the_discussion(client) -> None:
    times = window(opens_in=dt.timedelta(days=-5), days=14)
    response = await client.post(BASE, json={**DRAFT, **times}, headers=agency())
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "closes_at"


async def test_the_minimum_discussion_period_comes_from_config(make_client, database_url) -> None:
    client = await make_client(database_url, consultations={"min_discussion_days": 2})
    response = await client.post(BASE, json={**DRAFT, **window(days=3)}, headers=agency())
    assert response.status == 201


async def test_duplicate_section_numbers_are_refused(client) -> None:
    sections = [{"number": 1, "text": "a"}, {"number": 1, "text": "b"}, {"number": 2, "text": "c"}]
    response = await client.post(
        BASE, json={**DRAFT, **window(), "sections": sections}, headers=agency()
    )
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "sections.1.number", "message": "section number 1 is used twice"}
    ]


async def test_numbering_only_some_sections_is_refused(client) -> None:
    sections = [{"number": 1, "text": "a"}, {"text": "b"}]
    response = await client.post(
        BASE, json={**DRAFT, **window(), "sections": sections}, headers=agency()
    )
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "sections.1.number", "message": "number every section, or none of them"}
    ]


async def test_a_section_number_beyond_the_count_is_refused(client) -> None:
    sections = [{"number": 1, "text": "a"}, {"number": 5, "text": "b"}]
    response = await client.post(
        BASE, json={**DRAFT, **window(), "sections": sections}, headers=agency()
    )
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "sections.1.number", "message": "numbers run from 1 to 2"}
    ]


async def test_a_draft_without_sections_is_refused(client) -> None:
    response = await client.post(BASE, json={**DRAFT, **window(), "sections": []}, headers=agency())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["sections"]


async def test_times_without_a_time_zone_are_refused(client) -> None:
    times = {"opens_at": "2030-01-01T10:00:00", "closes_at": "2030-02-01T10:00:00+05:00"}
    response = await client.post(BASE, json={**DRAFT, **times}, headers=agency())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["opens_at"]


async def test_times_are_stored_in_utc(client, open_consultation) -> None:
    times = {"opens_at": "2030-01-01T10:00:00+05:00", "closes_at": "2030-02-01T10:00:00+05:00"}
    body = await open_consultation(client, **times)
    assert (body["opens_at"], body["closes_at"]) == ("2030-01-01T05:00:00Z", "2030-02-01T05:00:00Z")


async def test_opening_emits_consultation_opened(client, open_consultation) -> None:
    await open_consultation(client)
    assert events_emitted(client.app) == {"consultation.opened": 1}
