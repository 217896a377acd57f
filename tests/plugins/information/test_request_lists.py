from __future__ import annotations

import datetime as dt

import pytest

from core.clock import iso, utcnow
from plugins.information.tables import requests
from tests.support.identities import agency, citizen, moderator

BASE = "/api/v1/information-requests"
ANSWER = {"text": "Here is the data.", "language": "en"}


async def queue(client, code: str = "almaty-akimat", **params: str) -> dict:
    response = await client.get(BASE, params={"queue": "agency", **params}, headers=agency(code))
    assert response.status == 200, await response.text()
    return await response.json()


def ids(page: dict) -> list[str]:
    return [item["id"] for item in page["items"]]


async def test_overdue_is_derived_from_the_due_date_and_never_stored(
    client, act, file_request, set_due_at
) -> None:
    assert "overdue" not in requests.c
    filed = await file_request(client)
    await set_due_at(client, filed["id"], utcnow() - dt.timedelta(minutes=1))
    read = await (await client.get(f"{BASE}/{filed['id']}", headers=citizen(1))).json()
    assert (read["status"], read["overdue"]) == ("registered", True)
    await act(client, filed["id"], "progress")
    read = await (await client.get(f"{BASE}/{filed['id']}", headers=citizen(1))).json()
    assert (read["status"], read["overdue"]) == ("in_progress", True)


async def test_an_answered_request_is_not_overdue_past_its_due_date(
    client, act, file_request, set_due_at
) -> None:
    filed = await file_request(client)
    await act(client, filed["id"], "answer", **ANSWER)
    await set_due_at(client, filed["id"], utcnow() - dt.timedelta(days=3))
    read = await (await client.get(f"{BASE}/{filed['id']}", headers=agency())).json()
    assert (read["status"], read["overdue"]) == ("answered", False)


async def test_the_queue_is_sorted_by_due_date_and_pages_with_a_cursor(
    client, file_request, set_due_at
) -> None:
    now = utcnow()
    first, second, third = [await file_request(client, n) for n in (1, 2, 3)]
    await set_due_at(client, first["id"], now + dt.timedelta(days=9))
    await set_due_at(client, second["id"], now + dt.timedelta(days=1))
    await set_due_at(client, third["id"], now + dt.timedelta(days=5))
    page = await queue(client, limit="2")
    assert ids(page) == [second["id"], third["id"]]
    assert [item["due_at"] for item in page["items"]] == [
        iso(now + dt.timedelta(days=1)),
        iso(now + dt.timedelta(days=5)),
    ]
    rest = await queue(client, limit="2", cursor=page["next_cursor"])
    assert (ids(rest), rest["next_cursor"]) == ([first["id"]], None)


async def test_the_queue_holds_only_the_agencys_own_requests(client, file_request) -> None:
    ours = await file_request(client, 1, agency="almaty-akimat")
    await file_request(client, 2, agency="astana-akimat")
    assert ids(await queue(client, "almaty-akimat")) == [ours["id"]]


async def test_the_queue_filters_overdue_in_the_database(
    client, act, file_request, set_due_at
) -> None:
    late, on_time, answered = [await file_request(client, n) for n in (1, 2, 3)]
    past = utcnow() - dt.timedelta(hours=1)
    await set_due_at(client, late["id"], past)
    await act(client, answered["id"], "answer", **ANSWER)
    await set_due_at(client, answered["id"], past - dt.timedelta(hours=1))
    overdue = await queue(client, overdue="true")
    assert ids(overdue) == [late["id"]]
    assert overdue["items"][0]["overdue"] is True
    assert ids(await queue(client, overdue="false")) == [answered["id"], on_time["id"]]


async def test_the_queue_filters_by_status(client, act, file_request) -> None:
    registered, started = [await file_request(client, n) for n in (1, 2)]
    await act(client, started["id"], "progress")
    assert ids(await queue(client, status="in_progress")) == [started["id"]]
    assert ids(await queue(client, status="registered")) == [registered["id"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"queue": "agency", "status": "lost"}, "status"),
        ({"queue": "agency", "overdue": "maybe"}, "overdue"),
        ({"queue": "everyone"}, "queue"),
        ({}, "queue"),
        ({"queue": "agency", "mine": "true"}, "queue"),
        ({"queue": "agency", "limit": "0"}, "limit"),
    ],
    ids=["unknown-status", "overdue-not-bool", "unknown-queue", "neither", "both", "limit"],
)
async def test_an_invalid_list_query_is_422(client, params, field) -> None:
    response = await client.get(BASE, params=params, headers=agency())
    assert response.status == 422
    assert [error["field"] for error in (await response.json())["errors"]] == [field]


async def test_the_queue_needs_an_agency_token(client) -> None:
    assert (await client.get(BASE, params={"queue": "agency"})).status == 401
    for headers in (citizen(1), moderator()):
        response = await client.get(BASE, params={"queue": "agency"}, headers=headers)
        assert response.status == 403


async def test_a_citizen_lists_only_their_own_requests_newest_first(client, file_request) -> None:
    older = await file_request(client, 1)
    newer = await file_request(client, 1, agency="astana-akimat")
    await file_request(client, 2)
    response = await client.get(BASE, params={"mine": "true"}, headers=citizen(1))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    assert ids(await response.json()) == [newer["id"], older["id"]]


async def test_only_citizens_list_their_own_requests(client) -> None:
    assert (await client.get(BASE, params={"mine": "true"})).status == 401
    response = await client.get(BASE, params={"mine": "true"}, headers=agency())
    assert response.status == 403


# --- the public side -------------------------------------------------------------------------


async def test_the_public_list_shows_only_public_requests_without_the_requester(
    client, act, file_request
) -> None:
    answered = await file_request(client, 1, public=True)
    await act(client, answered["id"], "answer", **ANSWER)
    await file_request(client, 2)
    pending = await file_request(client, 3, public=True, agency="astana-akimat")
    response = await client.get(f"{BASE}/public")
    assert response.status == 200
    page = await response.json()
    assert ids(page) == [pending["id"], answered["id"]]
    for item in page["items"]:
        assert not {"requester_hash", "requester_name", "public"} & set(item)
    assert page["items"][1]["answer"]["text"] == ANSWER["text"]
    assert page["items"][1]["status"] == "answered"
    assert "Aigerim" not in await response.text()


async def test_the_public_list_filters_and_pages(client, act, file_request) -> None:
    first, second, third = [await file_request(client, n, public=True) for n in (1, 2, 3)]
    await act(client, second["id"], "answer", **ANSWER)
    other = await file_request(client, 4, public=True, agency="astana-akimat")
    page = await (await client.get(f"{BASE}/public", params={"limit": "2"})).json()
    assert ids(page) == [other["id"], third["id"]]
    rest = await (
        await client.get(f"{BASE}/public", params={"limit": "2", "cursor": page["next_cursor"]})
    ).json()
    assert ids(rest) == [second["id"], first["id"]]
    answered = await client.get(f"{BASE}/public", params={"status": "answered"})
    assert ids(await answered.json()) == [second["id"]]
    by_agency = await client.get(f"{BASE}/public", params={"agency": "astana-akimat"})
    assert ids(await by_agency.json()) == [other["id"]]
    assert (await client.get(f"{BASE}/public", params={"status": "lost"})).status == 422


async def test_a_public_request_reads_without_a_token_and_without_the_requester(
    client, act, file_request
) -> None:
    filed = await file_request(client, 1, public=True)
    await act(client, filed["id"], "refusal", reason="Classified.", language="en")
    response = await client.get(f"{BASE}/public/{filed['id']}")
    assert response.status == 200
    body = await response.json()
    assert body["refusal"]["reason"] == "Classified."
    assert not {"requester_hash", "requester_name", "public"} & set(body)


async def test_a_private_or_unknown_request_is_404_on_the_public_route(
    client, file_request
) -> None:
    private = await file_request(client, 1)
    assert (await client.get(f"{BASE}/public/{private['id']}")).status == 404
    assert (await client.get(f"{BASE}/public/{private['id']}", headers=citizen(1))).status == 404
    assert (await client.get(f"{BASE}/public/no-such-request")).status == 404
