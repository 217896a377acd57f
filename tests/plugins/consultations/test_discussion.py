"""The minimum discussion by kind of draft: 10 working days for a draft on public services,
10 calendar days for any other; the opening and the report both follow the draft's kind.

The shipped holiday calendar applies: Monday 8 March 2027 is a holiday.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core.clock import as_utc
from plugins.consultations.discussion import DraftKind, earliest_close
from plugins.consultations.settings import ConsultationSettings
from plugins.consultations.tables import consultations
from plugins.kazakhstan.settings import CalendarSettings
from plugins.kazakhstan.workdays import WorkCalendar
from tests.support.consultations import BASE, DRAFT, window
from tests.support.identities import agency
from tests.support.petitions import statutory_deadline
from tests.support.problems import problem
from tests.support.services import SHIPPED_CONFIG

ALMATY = ZoneInfo("Asia/Almaty")
HOLIDAYS = SHIPPED_CONFIG["kazakhstan"]["calendar"]["holidays"]
WORK = WorkCalendar(CalendarSettings.model_validate(SHIPPED_CONFIG["kazakhstan"]["calendar"]))
SETTINGS = ConsultationSettings.model_validate(SHIPPED_CONFIG["consultations"])
# Thursday 4 March 2027, 10:00 in Almaty: ten working days later (Friday 5, then Tuesday 9 to
# Friday 19 March, skipping the weekends and Monday 8 March) is Friday 19 March, 10:00.
OPENS = dt.datetime(2027, 3, 4, 10, 0, tzinfo=ALMATY)
PUBLIC_SERVICE_CLOSE = dt.datetime(2027, 3, 19, 10, 0, tzinfo=ALMATY)
REGULATORY_CLOSE = dt.datetime(2027, 3, 14, 10, 0, tzinfo=ALMATY)
RU_MUST_LAST = "обсуждение должно длиться не менее"
RU_FROM_OPENING = "с момента открытия"  # noqa: RUF001 - Russian: the Cyrillic letter is meant


@pytest.fixture
async def client(make_client: Any, database_url: str) -> Any:
    """The full app on each database, with the shipped holiday calendar."""
    return await make_client(
        database_url, kazakhstan={"calendar": SHIPPED_CONFIG["kazakhstan"]["calendar"]}
    )


def test_a_public_service_draft_is_discussed_ten_working_days_and_any_other_ten_days() -> None:
    start = OPENS.astimezone(dt.UTC)

    public_service = earliest_close(DraftKind.PUBLIC_SERVICE, start, SETTINGS, WORK)
    regulatory = earliest_close(DraftKind.REGULATORY, start, SETTINGS, WORK)

    assert public_service == PUBLIC_SERVICE_CLOSE
    assert regulatory == REGULATORY_CLOSE


async def _open(client: Any, kind: str | None, closes_at: dt.datetime) -> Any:
    body: dict[str, Any] = {
        **DRAFT,
        "opens_at": OPENS.isoformat(),
        "closes_at": closes_at.isoformat(),
    }
    if kind is not None:
        body["kind"] = kind
    return await client.post(BASE, json=body, headers=agency())


@pytest.mark.parametrize(
    ("kind", "closes_at", "status"),
    [
        ("public_service", PUBLIC_SERVICE_CLOSE, 201),
        ("public_service", PUBLIC_SERVICE_CLOSE - dt.timedelta(minutes=1), 422),
        ("regulatory", REGULATORY_CLOSE, 201),
        ("regulatory", REGULATORY_CLOSE - dt.timedelta(minutes=1), 422),
        (None, REGULATORY_CLOSE, 201),
    ],
    ids=[
        "public-service-enough",
        "public-service-short",
        "regulatory",
        "regulatory-short",
        "default",
    ],
)
async def test_the_opening_needs_the_minimum_of_the_drafts_kind(
    client: Any, kind: str | None, closes_at: dt.datetime, status: int
) -> None:
    response = await _open(client, kind, closes_at)

    assert response.status == status, await response.text()
    if status == 201:
        assert (await response.json())["kind"] == (kind or "regulatory")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("public_service", f"{RU_MUST_LAST} 10 рабочих дней {RU_FROM_OPENING}"),
        ("regulatory", f"{RU_MUST_LAST} 10 календарных дней {RU_FROM_OPENING}"),
    ],
)
async def test_a_short_discussion_says_which_days_count(
    client: Any, kind: str, message: str
) -> None:
    body = {
        **DRAFT,
        "kind": kind,
        "opens_at": OPENS.isoformat(),
        "closes_at": (REGULATORY_CLOSE - dt.timedelta(minutes=1)).isoformat(),
    }

    response = await client.post(BASE, json=body, headers={**agency(), "Accept-Language": "ru"})

    assert (await problem(response, 422))["errors"] == [{"field": "closes_at", "message": message}]


async def test_an_unknown_kind_of_draft_is_422(client: Any) -> None:
    body = await problem(await _open(client, "decree", PUBLIC_SERVICE_CLOSE), 422)

    assert [error["field"] for error in body["errors"]] == ["kind"]


async def test_the_report_on_a_public_service_draft_waits_ten_working_days(
    client: Any, fetch_rows: Any
) -> None:
    opened = await client.post(
        BASE, json={**DRAFT, **window(days=30), "kind": "public_service"}, headers=agency()
    )
    assert opened.status == 201
    consultation = await opened.json()

    response = await client.post(
        f"{BASE}/{consultation['id']}/report", json={"summary": "Done."}, headers=agency()
    )

    body = await problem(response, 409)
    [stored] = await fetch_rows(
        client,
        sa.select(consultations.c.created_at).where(consultations.c.id == consultation["id"]),
    )
    created = as_utc(stored.created_at)
    assert created is not None
    last_day = statutory_deadline(created, 10, HOLIDAYS).astimezone(ALMATY).date()
    expected = dt.datetime.combine(last_day, created.astimezone(ALMATY).time(), tzinfo=ALMATY)
    assert dt.datetime.fromisoformat(body["report_allowed_from"]) == expected
