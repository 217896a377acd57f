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

from typing import TYPE_CHECKING

from core.sdk import add_months, end_of_day, first_working_day

if TYPE_CHECKING:
    import datetime as dt

    from core.sdk import WorkingDays
    from plugins.petitions.settings import MonthsTerm


def collection_ends(work: WorkingDays, published_at: dt.datetime, term: MonthsTerm) -> dt.datetime:
    """When the collection of a petition published at ``published_at`` ends, in UTC."""
    day = add_months(published_at.astimezone(work.timezone).date(), term.months)
    return end_of_day(work, first_working_day(work, day))
