"""Working-day arithmetic for statutory deadlines, on Kazakhstan's holiday calendar from config.

A term in calendar days that ends on a day off ends on the next working day instead, as terms
in Kazakh law do.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from core.sdk import Term, end_of_day, first_working_day
from plugins.kazakhstan.settings import CalendarSettings


class WorkCalendar:
    """Counts working days in the authority's time zone, skipping weekends and holidays; a
    weekend day made a working day by a transfer counts."""

    def __init__(self, settings: CalendarSettings) -> None:
        self._weekend = frozenset(settings.weekend)
        self._holidays = frozenset(settings.holidays)
        self._working_days = frozenset(settings.working_days)
        self.timezone = ZoneInfo(settings.timezone)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self._working_days:
            return True
        return day.weekday() not in self._weekend and day not in self._holidays

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        """The end (23:59:59 local) of the ``days``-th working day after ``start``'s local date.

        Day one is the first working day after the day of filing, as statutory terms count.
        """
        if days < 1:
            raise ValueError("a term is at least one working day")
        day = start.astimezone(self.timezone).date()
        counted = 0
        while counted < days:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return end_of_day(self, day)

    def term_end(self, start: dt.datetime, term: Term) -> dt.datetime:
        """When ``term`` runs out for something filed at ``start``.

        Calendar days count from the day after filing; a term whose last day is a day off ends
        at the end of the next working day.
        """
        if term.unit == "working":
            return self.add_working_days(start, term.days)
        day = start.astimezone(self.timezone).date() + dt.timedelta(days=term.days)
        return end_of_day(self, first_working_day(self, day))
