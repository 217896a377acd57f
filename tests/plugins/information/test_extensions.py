"""An agency extends a request's answer term: within the notice period after filing, up to the
statutory maximum, with a reason the requester is told; overdue then follows the new date.

The shipped holiday calendar applies, and times are pinned: filed on Monday 1 March 2027, 10:00
in Almaty (UTC+5). The notice period of three working days ends with Thursday 4 March; two
months from filing is Saturday 1 May, a holiday, with Sunday 2 May and Monday 3 May (the
holiday moved from 1 May) off too, so the longest term ends on Tuesday 4 May.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core.plugin_host import keys as plugin_host_keys
from core.storage import keys as storage_keys
from plugins.information.tables import requests
from tests.support.identities import agency, citizen, moderator
from tests.support.metrics import events_emitted
from tests.support.petitions import EventRecorder
from tests.support.problems import problem
from tests.support.services import SHIPPED_CONFIG

BASE = "/api/v1/information-requests"
ALMATY = ZoneInfo("Asia/Almaty")
FILED = dt.datetime(2027, 3, 1, 10, 0, tzinfo=ALMATY)
LAST_NOTICE_MOMENT = dt.datetime(2027, 3, 4, 23, 59, 59, tzinfo=ALMATY)
FIRST_REFUSED_MOMENT = dt.datetime(2027, 3, 5, 0, 0, 0, tzinfo=ALMATY)
EXTENSION = {
    "until": "2027-04-15",
    "reason": "The schedule is being agreed with the district contractors.",
    "language": "en",
}


class Clock:
    """The information handlers' ``utcnow``, pinned and moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, now: dt.datetime) -> None:
        self.now = now.astimezone(dt.UTC)
        monkeypatch.setattr("plugins.information.handlers.utcnow", lambda: self.now)

    def set(self, now: dt.datetime) -> None:
        self.now = now.astimezone(dt.UTC)


@pytest.fixture
async def client(make_client: Any, database_url: str) -> Any:
    """The full app on each database, with the shipped holiday calendar."""
    return await make_client(
        database_url, kazakhstan={"calendar": SHIPPED_CONFIG["kazakhstan"]["calendar"]}
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, FILED)


async def _extend(client: Any, request_id: str, code: str = "almaty-akimat", **body: Any) -> Any:
    return await client.post(
        f"{BASE}/{request_id}/extension", json={**EXTENSION, **body}, headers=agency(code)
    )


async def _read(client: Any, request_id: str) -> dict[str, Any]:
    response = await client.get(f"{BASE}/{request_id}", headers=citizen(1))
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_an_extension_moves_the_due_date_and_tells_its_reason(
    client: Any, clock: Clock, file_request: Any
) -> None:
    filed = await file_request(client)
    clock.set(FILED + dt.timedelta(hours=1))

    response = await _extend(client, filed["id"])

    assert response.status == 200
    body = await response.json()
    assert body["due_at"] == "2027-04-15T18:59:59Z"
    assert body["extension"] == {
        "reason": EXTENSION["reason"],
        "language": "en",
        "extended_at": "2027-03-01T06:00:00Z",
    }
    assert body["status"] == "registered"
    assert await _read(client, filed["id"]) == body
    assert filed["extension"] is None


@pytest.mark.parametrize(
    ("moment", "status"),
    [(LAST_NOTICE_MOMENT, 200), (FIRST_REFUSED_MOMENT, 409)],
    ids=["last-moment-of-the-third-working-day", "first-moment-after-it"],
)
async def test_an_extension_is_allowed_only_within_the_notice_period(
    client: Any, clock: Clock, file_request: Any, moment: dt.datetime, status: int
) -> None:
    filed = await file_request(client)
    clock.set(moment)

    response = await _extend(client, filed["id"])

    assert response.status == status
    if status == 409:
        body = await problem(response, 409)
        assert body["detail"] == "the notice period for an extension ended at 2027-03-04T18:59:59Z"
        assert (await _read(client, filed["id"]))["due_at"] == filed["due_at"]


async def test_the_notice_period_skips_days_off(
    client: Any, clock: Clock, file_request: Any
) -> None:
    # Filed on Thursday 4 March: Friday 5, then Monday 8 March is a holiday, Tuesday 9 and
    # Wednesday 10 make three working days.
    clock.set(dt.datetime(2027, 3, 4, 12, 0, tzinfo=ALMATY))
    filed = await file_request(client)
    clock.set(dt.datetime(2027, 3, 10, 23, 0, tzinfo=ALMATY))
    assert (await _extend(client, filed["id"], until="2027-04-30")).status == 200

    clock.set(dt.datetime(2027, 3, 4, 12, 0, tzinfo=ALMATY))
    late = await file_request(client)
    clock.set(dt.datetime(2027, 3, 11, 0, 0, 1, tzinfo=ALMATY))
    assert (await _extend(client, late["id"], until="2027-04-30")).status == 409


@pytest.mark.parametrize(("until", "status"), [("2027-05-04", 200), ("2027-05-05", 422)])
async def test_the_term_extends_to_two_months_from_filing_at_most(
    client: Any, clock: Clock, file_request: Any, until: str, status: int
) -> None:
    filed = await file_request(client)

    response = await _extend(client, filed["id"], until=until)

    assert response.status == status
    if status == 200:
        assert (await response.json())["due_at"] == "2027-05-04T18:59:59Z"
    else:
        body = await problem(response, 422)
        assert body["errors"] == [
            {"field": "until", "message": "the term may be extended to 2027-05-04 at most"}
        ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"until": "not-a-date"}, "until"),
        ({"until": None}, "until"),
        ({"reason": ""}, "reason"),
        ({"reason": None}, "reason"),
        ({"language": "fr"}, "language"),
        ({"surprise": 1}, "surprise"),
    ],
    ids=["until-not-a-date", "until-null", "reason-empty", "reason-null", "language", "extra"],
)
async def test_a_malformed_extension_is_422_and_changes_nothing(
    client: Any, clock: Clock, file_request: Any, changes: dict[str, Any], field: str
) -> None:
    filed = await file_request(client)

    body = await problem(await _extend(client, filed["id"], **changes), 422)

    assert [error["field"] for error in body["errors"]] == [field]
    assert await _read(client, filed["id"]) == filed


async def test_an_extension_that_does_not_move_the_date_later_is_422(
    client: Any, clock: Clock, file_request: Any
) -> None:
    filed = await file_request(client)
    current = dt.datetime.fromisoformat(filed["due_at"]).astimezone(ALMATY).date()

    for until in (current, current - dt.timedelta(days=1)):
        body = await problem(await _extend(client, filed["id"], until=until.isoformat()), 422)
        assert body["errors"] == [
            {
                "field": "until",
                "message": f"must be after the term's current last day, {current.isoformat()}",
            }
        ]
    assert await _read(client, filed["id"]) == filed


async def test_the_reasons_of_a_refusal_answer_in_the_language(
    client: Any, clock: Clock, file_request: Any
) -> None:
    filed = await file_request(client)

    response = await client.post(
        f"{BASE}/{filed['id']}/extension",
        json={**EXTENSION, "until": "2027-06-01"},
        headers={**agency("almaty-akimat"), "Accept-Language": "ru"},
    )

    body = await problem(response, 422)
    assert body["errors"] == [
        {"field": "until", "message": "срок можно продлить не далее чем до 2027-05-04"}
    ]


@pytest.mark.parametrize("headers", [citizen(1), moderator()], ids=["citizen", "moderator"])
async def test_only_an_agency_official_may_extend(
    client: Any, clock: Clock, file_request: Any, headers: dict[str, str]
) -> None:
    filed = await file_request(client)

    response = await client.post(f"{BASE}/{filed['id']}/extension", json=EXTENSION, headers=headers)

    await problem(response, 403)
    assert await _read(client, filed["id"]) == filed


async def test_another_agency_cannot_extend_and_learns_nothing(
    client: Any, clock: Clock, file_request: Any
) -> None:
    # As for every move on a request: another agency's request is unknown to it (404, not 403).
    filed = await file_request(client)

    other = await problem(await _extend(client, filed["id"], code="astana-akimat"), 404)
    missing = await problem(await _extend(client, "no-such-request"), 404)

    assert other["detail"] == missing["detail"] == "no such information request"
    assert await _read(client, filed["id"]) == filed


async def test_a_term_is_extended_once(client: Any, clock: Clock, file_request: Any) -> None:
    filed = await file_request(client)
    assert (await _extend(client, filed["id"])).status == 200

    body = await problem(await _extend(client, filed["id"], until="2027-04-30"), 409)

    assert body["detail"] == "the answer term was already extended at 2027-03-01T05:00:00Z"
    assert (await _read(client, filed["id"]))["due_at"] == "2027-04-15T18:59:59Z"


async def test_an_answered_request_cannot_be_extended(
    client: Any, clock: Clock, act: Any, file_request: Any
) -> None:
    filed = await file_request(client)
    answered = await act(client, filed["id"], "answer", text="Attached.", language="en")
    assert answered.status == 200

    body = await problem(await _extend(client, filed["id"]), 409)

    assert body["request_status"] == "answered"


async def test_overdue_follows_the_extended_date(
    client: Any, clock: Clock, file_request: Any
) -> None:
    extended = await file_request(client)
    plain = await file_request(client)
    assert (await _extend(client, extended["id"])).status == 200

    clock.set(dt.datetime(2027, 4, 15, 23, 0, tzinfo=ALMATY))
    before = await _read(client, extended["id"])
    unextended = await _read(client, plain["id"])
    queue_before = await _overdue_queue(client)
    clock.set(dt.datetime(2027, 4, 16, 0, 0, 1, tzinfo=ALMATY))
    after = await _read(client, extended["id"])
    queue_after = await _overdue_queue(client)

    assert (before["overdue"], unextended["overdue"], after["overdue"]) == (False, True, True)
    assert queue_before == [plain["id"]]
    assert sorted(queue_after) == sorted([plain["id"], extended["id"]])


async def _overdue_queue(client: Any) -> list[str]:
    response = await client.get(
        BASE, params={"queue": "agency", "overdue": "true"}, headers=agency("almaty-akimat")
    )
    assert response.status == 200
    return [item["id"] for item in (await response.json())["items"]]


async def test_the_requester_is_told_by_an_event(
    make_client: Any, monkeypatch: pytest.MonkeyPatch, file_request: Any
) -> None:
    Clock(monkeypatch, FILED)
    listener = EventRecorder()
    client = await make_client(
        extra_plugins=(listener,), kazakhstan={"calendar": SHIPPED_CONFIG["kazakhstan"]["calendar"]}
    )
    filed = await file_request(client)

    assert (await _extend(client, filed["id"])).status == 200
    await client.app[plugin_host_keys.EVENTS].drain()

    async with client.app[storage_keys.DATABASE].read() as conn:
        requester = (
            await conn.execute(
                sa.select(requests.c.requester_hash).where(requests.c.id == filed["id"])
            )
        ).scalar_one()
    [event] = listener.named("information_request.extended")
    assert event.subject_id == filed["id"]
    assert event.payload == {
        "agency": "almaty-akimat",
        "requester": requester,
        "due_at": "2027-04-15T18:59:59Z",
        "reason": EXTENSION["reason"],
        "language": "en",
    }
    assert events_emitted(client.app)["information_request.extended"] == 1
