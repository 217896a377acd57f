from __future__ import annotations

import datetime as dt

import pytest

from tests.support.consultations import BASE, window
from tests.support.identities import agency


async def test_reading_an_unknown_consultation_is_404(client) -> None:
    response = await client.get(f"{BASE}/nope")
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_a_read_carries_an_etag_and_cache_control_and_answers_304(
    client, open_consultation
) -> None:
    consultation = await open_consultation(client)
    first = await client.get(f"{BASE}/{consultation['id']}")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=1, stale-while-revalidate=5"
    again = await client.get(f"{BASE}/{consultation['id']}", headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag


async def test_a_vote_changes_the_etag(client, open_consultation, vote) -> None:
    consultation = await open_consultation(client)
    before = (await client.get(f"{BASE}/{consultation['id']}")).headers["ETag"]
    assert (await vote(client, consultation["id"], 1, "support")).status == 201
    after = await client.get(f"{BASE}/{consultation['id']}", headers={"If-None-Match": before})
    assert after.status == 200
    assert (await after.json())["votes"]["support"] == 1


async def test_a_consultation_past_its_closing_time_reads_as_closed(
    client, close_by_deadline, open_consultation, read
) -> None:
    consultation = await open_consultation(client)
    await close_by_deadline(client, consultation["id"])
    assert (await read(client, consultation["id"]))["status"] == "closed"


@pytest.fixture
def three_states(open_consultation, close_by_deadline):
    """One open, one upcoming and one closed consultation: their ids by status."""

    async def opened(client) -> dict[str, str]:
        open_ = await open_consultation(client, title="An open consultation")
        upcoming = await open_consultation(
            client, title="An upcoming consultation", **window(opens_in=dt.timedelta(days=2))
        )
        closed = await open_consultation(client, title="A closed consultation")
        await close_by_deadline(client, closed["id"])
        return {"open": open_["id"], "upcoming": upcoming["id"], "closed": closed["id"]}

    return opened


@pytest.mark.parametrize("status", ["open", "upcoming", "closed"])
async def test_the_list_filters_by_status(client, status, three_states) -> None:
    ids = await three_states(client)
    response = await client.get(BASE, params={"status": status})
    assert response.status == 200
    body = await response.json()
    assert [item["id"] for item in body["items"]] == [ids[status]]
    assert body["items"][0]["status"] == status
    assert body["next_cursor"] is None


async def test_a_consultation_closed_by_its_report_lists_as_closed(
    client, open_consultation, past_minimum_discussion
) -> None:
    consultation = await open_consultation(client)
    await past_minimum_discussion(client, consultation["id"])
    report = await client.post(
        f"{BASE}/{consultation['id']}/report", json={"summary": "Done."}, headers=agency()
    )
    assert report.status == 201
    closed = await (await client.get(BASE, params={"status": "closed"})).json()
    opened = await (await client.get(BASE, params={"status": "open"})).json()
    assert [item["id"] for item in closed["items"]] == [consultation["id"]]
    assert opened["items"] == []


async def test_the_list_filters_by_agency(client, open_consultation) -> None:
    await open_consultation(client, "almaty-akimat")
    mine = await open_consultation(client, "astana-akimat")
    body = await (await client.get(BASE, params={"agency": "astana-akimat"})).json()
    assert [item["id"] for item in body["items"]] == [mine["id"]]


async def test_the_list_pages_newest_first_with_a_cursor(client, open_consultation) -> None:
    created = [
        (await open_consultation(client, title=f"Consultation number {n}"))["id"] for n in range(5)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        body = await (await client.get(BASE, params=params)).json()
        pages += 1
        assert len(body["items"]) <= 2
        seen.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(created))


async def test_list_items_leave_out_sections_and_report(client, open_consultation) -> None:
    consultation = await open_consultation(client)
    item = (await (await client.get(BASE)).json())["items"][0]
    assert "sections" not in item
    assert "report" not in item
    assert item["id"] == consultation["id"]
    assert item["votes"] == {"support": 0, "oppose": 0, "neutral": 0}


async def test_a_forged_cursor_is_400(client) -> None:
    response = await client.get(BASE, params={"cursor": "bm90LWEtY3Vyc29y"})
    assert response.status == 400


async def test_an_unknown_status_filter_is_422(client) -> None:
    response = await client.get(BASE, params={"status": "archived"})
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["status"]


async def test_openapi_documents_every_consultation_route(client) -> None:
    paths = (await (await client.get("/openapi.json")).json())["paths"]
    assert set(paths[BASE]) == {"get", "post"}
    assert set(paths[BASE + "/{id}"]) == {"get"}
    assert set(paths[BASE + "/{id}/comments"]) == {"get", "post"}
    assert set(paths[BASE + "/{id}/comments/{comment_id}/hide"]) == {"post"}
    assert set(paths[BASE + "/{id}/votes"]) == {"post"}
    assert set(paths[BASE + "/{id}/report"]) == {"post"}
