"""The collection period counts calendar months from the day a petition goes public."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from plugins.kazakhstan.settings import CalendarSettings
from plugins.kazakhstan.workdays import WorkCalendar
from plugins.petitions.collection import collection_ends
from plugins.petitions.settings import MonthsTerm, PetitionSettings
from tests.support.services import SHIPPED_CONFIG

ALMATY = ZoneInfo("Asia/Almaty")
SIX_MONTHS = MonthsTerm(months=6, source="a test figure")
WORK = WorkCalendar(CalendarSettings.model_validate(SHIPPED_CONFIG["kazakhstan"]["calendar"]))


def _almaty(year: int, month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=ALMATY)


@pytest.mark.parametrize(
    ("published", "last_day"),
    [
        # Wednesday 15 July 2026 -> Friday 15 January 2027.
        (_almaty(2026, 7, 15), dt.date(2027, 1, 15)),
        # 31 August 2026 -> 28 February 2027, a Sunday -> Monday 1 March.
        (_almaty(2026, 8, 31), dt.date(2027, 3, 1)),
        # 1 November 2026 -> 1 May 2027: a Saturday and a holiday; Sunday 2 May and Monday 3 May
        # (the holiday moved) are off too -> Tuesday 4 May.
        (_almaty(2026, 11, 1), dt.date(2027, 5, 4)),
        # 23:00 on Thursday 31 December 2026 -> 30 June 2027, as June has no 31st.
        (_almaty(2026, 12, 31, 23), dt.date(2027, 6, 30)),
    ],
)
def test_the_collection_ends_six_calendar_months_after_the_day_it_went_public(
    published: dt.datetime, last_day: dt.date
) -> None:
    ends = collection_ends(WORK, published.astimezone(dt.UTC), SIX_MONTHS)

    assert ends == dt.datetime.combine(last_day, dt.time(23, 59, 59), ALMATY)


def test_the_day_the_petition_went_public_sets_the_clock_in_the_authoritys_time_zone() -> None:
    # 20:00 UTC on 14 July is 01:00 on 15 July in Almaty: the clock starts on 15 July.
    published = dt.datetime(2026, 7, 14, 20, 0, tzinfo=dt.UTC)

    ends = collection_ends(WORK, published, SIX_MONTHS)

    assert ends.astimezone(ALMATY).date() == dt.date(2027, 1, 15)


def test_the_shipped_collection_term_is_six_months() -> None:
    settings = PetitionSettings.model_validate(SHIPPED_CONFIG["petitions"])

    assert settings.collection_term.months == 6
    with pytest.raises(ValueError, match="months"):
        PetitionSettings.model_validate({"collection_term": {"days": 180, "source": "a law"}})
