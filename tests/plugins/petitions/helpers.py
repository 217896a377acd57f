"""Steps that many petition tests share: file, moderate, sign, answer, and look in the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core import keys
from core.events import Event
from core.hookspecs import hookimpl
from plugins.petitions.sweeper import expire_overdue
from plugins.petitions.tables import petitions, signatures
from tests.conftest import agency, citizen, moderator

BASE = "/api/v1/petitions"

PETITION = {
    "title": "Light the footpath along the river",
    "text": "The footpath between the two bridges has no lighting and is unsafe after dark. "
    "Please fund lighting.",
    "addressee": "almaty-bostandyq-akimat",
}

# Small figures so a test can walk the whole lifecycle with a handful of signers.
CO_SIGNER_MINIMUM = 3
THRESHOLD = 5


def fixed_thresholds(signatures: int) -> dict[str, dict[str, Any]]:
    """Every level's threshold fixed at ``signatures``, so that a test needs few signers."""
    return {
        level: {"signatures": signatures, "source": "a test figure"}
        for level in ("republic", "region", "city", "district")
    }


SMALL_FIGURES: dict[str, Any] = {
    "co_signer_minimum": CO_SIGNER_MINIMUM,
    "thresholds": fixed_thresholds(THRESHOLD),
}

ALMATY = ZoneInfo("Asia/Almaty")
PROBLEM_FIELDS = {"type", "title", "status", "detail"}


def petition_url(petition_id: str, suffix: str = "") -> str:
    return f"{BASE}/{petition_id}{suffix}"


async def file_petition(client: Any, author: int = 1, **fields: Any) -> dict[str, Any]:
    response = await client.post(BASE, json={**PETITION, **fields}, headers=citizen(author))
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def moderate(
    client: Any,
    petition_id: str,
    decision: str,
    reason: str | None = None,
    reason_code: str | None = None,
) -> Any:
    payload: dict[str, Any] = {"decision": decision}
    if reason is not None:
        payload["reason"] = reason
    if reason_code is not None:
        payload["reason_code"] = reason_code
    return await client.post(
        petition_url(petition_id, "/moderation"), json=payload, headers=moderator()
    )


async def approved_petition(client: Any, **fields: Any) -> dict[str, Any]:
    petition = await file_petition(client, **fields)
    response = await moderate(client, petition["id"], "approve")
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def sign(client: Any, petition_id: str, n: int) -> Any:
    return await client.post(petition_url(petition_id, "/signatures"), headers=citizen(n))


async def sign_by(client: Any, petition_id: str, numbers: Iterable[int]) -> list[dict[str, Any]]:
    """Sign one citizen after another; every signature must be accepted."""
    receipts = []
    for n in numbers:
        response = await sign(client, petition_id, n)
        assert response.status == 201, await response.text()
        receipts.append(await response.json())
    return receipts


async def answer(
    client: Any,
    petition_id: str,
    code: str = "almaty-bostandyq-akimat",
    text: str = "The footpath will be lit by spring.",
) -> Any:
    return await client.post(
        petition_url(petition_id, "/response"), json={"text": text}, headers=agency(code)
    )


async def petition_in(client: Any, status: str, **fields: Any) -> dict[str, Any]:
    """A petition brought to ``status`` through the API; needs a client with SMALL_FIGURES."""
    if status == "moderation":
        return await file_petition(client, **fields)
    if status == "rejected":
        petition = await file_petition(client, **fields)
        response = await moderate(
            client, petition["id"], "reject", "Asks for a referendum", "referendums"
        )
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body
    petition = await approved_petition(client, **fields)
    petition_id = petition["id"]
    if status == "restricted":
        return petition
    if status == "expired":
        await move_deadlines_to_past(client, petition_id)
        assert await expire_overdue(client.app) == [petition_id]
        return await read_back(client, petition_id)
    signers = {"public": CO_SIGNER_MINIMUM, "awaiting_response": THRESHOLD, "answered": THRESHOLD}
    await sign_by(client, petition_id, range(500, 500 + signers[status]))
    if status == "answered":
        response = await answer(client, petition_id)
        assert response.status == 200, await response.text()
    result = await read_back(client, petition_id)
    assert result["status"] == status
    return result


async def read_back(client: Any, petition_id: str) -> dict[str, Any]:
    """The petition as a moderator reads it (moderators see every status)."""
    response = await client.get(petition_url(petition_id), headers=moderator())
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def execute(client: Any, statement: Any) -> None:
    """Run a statement through the app's writer, as the plugin's own writes are."""

    async def write(conn: Any) -> None:
        await conn.execute(statement)

    await client.app[keys.WRITER].submit(write)


async def move_deadlines_to_past(client: Any, petition_id: str) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    await execute(
        client,
        sa.update(petitions)
        .where(petitions.c.id == petition_id)
        .values(restricted_until=past, collection_ends_at=past),
    )
    # Reads are micro-cached for a second; a test that rewrites a row must not see the old one.
    client.app[keys.CACHE].invalidate(f"petitions:{petition_id}")


async def stored_petition(client: Any, petition_id: str) -> Any:
    async with client.app[keys.DATABASE].read() as conn:
        result = await conn.execute(sa.select(petitions).where(petitions.c.id == petition_id))
        return result.one()


async def signature_hashes(client: Any, petition_id: str) -> list[str]:
    async with client.app[keys.DATABASE].read() as conn:
        result = await conn.execute(
            sa.select(signatures.c.citizen_hash).where(signatures.c.petition_id == petition_id)
        )
        return [row.citizen_hash for row in result]


async def problem(response: Any, status: int) -> dict[str, Any]:
    """Assert ``response`` is a problem+json of ``status`` and return its body."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/problem+json", text
    body: dict[str, Any] = await response.json(content_type=None)
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert body["title"]
    assert body["detail"]
    return body


def error_fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body["errors"]]


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def statutory_deadline(
    start: dt.datetime, working_days: int, holidays: Iterable[dt.date] = ()
) -> dt.datetime:
    """The end of the n-th working day after ``start``'s date in Almaty (weekends Sat and Sun)."""
    days_off = set(holidays)
    day = start.astimezone(ALMATY).date()
    counted = 0
    while counted < working_days:
        day += dt.timedelta(days=1)
        if day.weekday() < 5 and day not in days_off:
            counted += 1
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=ALMATY).astimezone(dt.UTC)


class EventRecorder:
    """A third-party plugin that records every domain event it is handed."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def qatysu_event(self, event: Event, app: Any) -> None:
        """Record the event."""
        self.events.append(event)

    def named(self, name: str) -> list[Event]:
        return [event for event in self.events if event.name == name]
