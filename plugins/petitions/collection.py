"""When a petition's collection of signatures ends: a term in calendar months.

The law gives the collection period in months ("six months"), which no count of days matches
(180 days falls short of six months by up to four days). One rule for when the clock starts:
it starts on the day the petition goes public (reaches its co-signers and is published), in
the authority's time zone, and the period ends at the end (23:59:59) of the day with the same
number ``months`` later, or of that month's last day when the month is shorter (published on
31 August, it ends on 28 February). A last day that is a day off moves to the next working day,
as every calendar-day term here does.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.sdk import WorkingDays
    from plugins.petitions.settings import MonthsTerm


def collection_ends(work: WorkingDays, published_at: dt.datetime, term: MonthsTerm) -> dt.datetime:
    """When the collection of a petition published at ``published_at`` ends, in UTC."""
    day = add_months(published_at.astimezone(work.timezone).date(), term.months)
    while not work.is_working_day(day):
        day += dt.timedelta(days=1)
    end = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=work.timezone)
    return end.astimezone(dt.UTC)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or that month's last day when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
