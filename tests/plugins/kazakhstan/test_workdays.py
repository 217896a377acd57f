"""Working-day terms: weekends and holidays skipped, counted from the day after, in Almaty time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from core.identity.jurisdiction import Term
from plugins.kazakhstan.settings import CalendarSettings
from plugins.kazakhstan.workdays import WorkCalendar

ALMATY = ZoneInfo("Asia/Almaty")
# 2023-06-01 is a Thursday; 2023-06-05 a Monday.
THU, FRI, SAT, SUN, MON, TUE, WED = (dt.date(2023, 6, d) for d in range(1, 8))


def calendar(
    *holidays: dt.date,
    weekend: tuple[int, ...] = (5, 6),
    working_days: tuple[dt.date, ...] = (),
) -> WorkCalendar:
    return WorkCalendar(
        CalendarSettings(holidays=holidays, weekend=weekend, working_days=working_days)
    )


def local(day: dt.date, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ALMATY)


def end_of(day: dt.date) -> dt.datetime:
    """23:59:59 Almaty time on ``day``, in UTC: how the calendar reports a due date."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=ALMATY).astimezone(dt.UTC)


def test_weekend_days_and_holidays_are_not_working_days() -> None:
    work = calendar(WED)
    assert [work.is_working_day(d) for d in (THU, FRI, SAT, SUN, MON, TUE, WED)] == [
        True,
        True,
        False,
        False,
        True,
        True,
        False,
    ]


def test_a_term_starts_the_day_after_filing() -> None:
    assert calendar().add_working_days(local(MON), 1) == end_of(TUE)


def test_a_term_skips_the_weekend() -> None:
    assert calendar().add_working_days(local(THU), 1) == end_of(FRI)
    assert calendar().add_working_days(local(THU), 2) == end_of(MON)
    assert calendar().add_working_days(local(FRI), 1) == end_of(MON)


def test_a_filing_on_the_weekend_counts_from_the_next_working_day() -> None:
    assert calendar().add_working_days(local(SAT), 1) == end_of(MON)
    assert calendar().add_working_days(local(SUN), 1) == end_of(MON)


def test_a_term_skips_configured_holidays() -> None:
    assert calendar(MON, TUE).add_working_days(local(FRI), 1) == end_of(WED)


def test_a_term_of_twenty_working_days_spans_four_weeks() -> None:
    # From Thursday 1 June: 20 working days end on Thursday 29 June (no holidays).
    assert calendar().add_working_days(local(THU), 20) == end_of(dt.date(2023, 6, 29))
    # A holiday inside the term moves its end one working day on.
    assert calendar(dt.date(2023, 6, 6)).add_working_days(local(THU), 20) == end_of(
        dt.date(2023, 6, 30)
    )


def test_a_custom_weekend_is_respected() -> None:
    # A six-day week: only Sunday is off.
    assert calendar(weekend=(6,)).add_working_days(local(FRI), 1) == end_of(SAT)


def test_a_filing_at_23_30_almaty_time_counts_from_the_next_local_day() -> None:
    filed = local(THU, 23, 30)
    assert calendar().add_working_days(filed, 1) == end_of(FRI)
    # The same instant given in UTC is still Thursday in Almaty.
    assert calendar().add_working_days(filed.astimezone(dt.UTC), 1) == end_of(FRI)


def test_a_filing_just_after_midnight_almaty_time_is_the_next_local_day_though_utc_lags() -> None:
    filed = local(FRI, 0, 30).astimezone(dt.UTC)
    assert filed.date() == THU  # UTC is still on Thursday
    assert calendar().add_working_days(filed, 1) == end_of(MON)


def test_the_due_date_is_returned_in_utc() -> None:
    due = calendar().add_working_days(local(MON), 1)
    assert due.tzinfo is dt.UTC
    assert due.astimezone(ALMATY).time() == dt.time(23, 59, 59)


@pytest.mark.parametrize("days", [0, -1])
def test_a_term_shorter_than_one_day_is_refused(days: int) -> None:
    with pytest.raises(ValueError, match="a term is at least one working day"):
        calendar().add_working_days(local(MON), days)


def _term(days: int, unit: str) -> Term:
    return Term.model_validate({"days": days, "unit": unit, "source": "a test figure"})


def test_a_working_day_term_ends_as_add_working_days_does() -> None:
    assert calendar(MON).term_end(local(THU), _term(2, "working")) == end_of(TUE)


def test_a_calendar_day_term_counts_every_day_from_the_day_after() -> None:
    assert calendar().term_end(local(MON), _term(3, "calendar")) == end_of(dt.date(2023, 6, 8))


def test_a_calendar_day_term_ending_on_a_day_off_ends_on_the_next_working_day() -> None:
    # Two calendar days from Thursday end on Saturday: the term ends on Monday, or on Tuesday
    # when Monday is a holiday.
    assert calendar().term_end(local(THU), _term(2, "calendar")) == end_of(MON)
    assert calendar(MON).term_end(local(THU), _term(2, "calendar")) == end_of(TUE)


def test_a_transferred_saturday_is_a_working_day_and_the_sunday_stays_off() -> None:
    work = calendar(MON, working_days=(SAT,))
    assert [work.is_working_day(d) for d in (FRI, SAT, SUN, MON, TUE)] == [
        True,
        True,
        False,
        False,
        True,
    ]


def test_a_working_day_term_counts_a_transferred_saturday() -> None:
    # Friday's term of one working day ends on Saturday, not Monday; two end on Tuesday when
    # Monday is the day off moved from that Saturday.
    work = calendar(MON, working_days=(SAT,))
    assert work.add_working_days(local(FRI), 1) == end_of(SAT)
    assert work.add_working_days(local(FRI), 2) == end_of(TUE)
    assert work.term_end(local(THU), _term(2, "working")) == end_of(SAT)


def test_a_calendar_day_term_ending_on_a_transferred_saturday_ends_that_day() -> None:
    assert calendar().term_end(local(THU), _term(2, "calendar")) == end_of(MON)
    assert calendar(working_days=(SAT,)).term_end(local(THU), _term(2, "calendar")) == end_of(SAT)
