"""The holiday calendar's reach: a gauge of the days left to the last listed holiday, and one
warning at start-up when fewer than 90 are left."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry, Gauge

from core.host.app import create_app
from plugins.kazakhstan.calendar_watch import CALENDAR_WATCH, CalendarWatch
from plugins.kazakhstan.settings import CalendarSettings

ALMATY = ZoneInfo("Asia/Almaty")

LAST_HOLIDAY = dt.date(2027, 12, 16)
HOLIDAYS = (dt.date(2027, 1, 1), LAST_HOLIDAY, dt.date(2027, 3, 22))
LOGGER = "plugins.kazakhstan.calendar_watch"


def watch(today: dt.date, *holidays: dt.date) -> CalendarWatch:
    gauge = Gauge("qatysu_calendar_days_left", "Days left.", registry=CollectorRegistry())
    return CalendarWatch(CalendarSettings(holidays=holidays), ALMATY, gauge, today=lambda: today)


def gauge_value(calendar_watch: CalendarWatch) -> float:
    (family,) = calendar_watch.gauge.collect()
    (sample,) = family.samples
    return sample.value


def test_the_gauge_holds_the_days_from_today_to_the_last_listed_holiday() -> None:
    checked = watch(dt.date(2027, 9, 17), *HOLIDAYS)

    assert checked.check() == 90
    assert gauge_value(checked) == 90.0


def test_the_gauge_goes_negative_once_the_last_holiday_has_passed() -> None:
    checked = watch(dt.date(2027, 12, 26), *HOLIDAYS)

    assert checked.check() == -10
    assert gauge_value(checked) == -10.0


def test_ninety_days_or_more_left_log_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        watch(dt.date(2027, 9, 17), *HOLIDAYS).check()

    assert caplog.records == []


def test_fewer_than_ninety_days_left_warn_once_naming_the_date_and_the_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    checked = watch(dt.date(2027, 9, 18), *HOLIDAYS)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        checked.check()
        checked.check()

    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            "the holiday calendar runs out in 89 days: the last listed holiday is 2027-12-16; "
            "add next year's holidays to [kazakhstan.calendar] holidays",
        )
    ]


def test_a_calendar_without_holidays_has_no_days_left_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    checked = watch(dt.date(2027, 1, 1))

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert checked.check() == 0

    assert [r.getMessage() for r in caplog.records] == [
        "no holidays are listed: add this and next year's to [kazakhstan.calendar] holidays"
    ]


def test_the_default_clock_is_today_in_the_calendars_time_zone() -> None:
    gauge = Gauge("qatysu_calendar_days_left", "Days left.", registry=CollectorRegistry())
    checked = CalendarWatch(CalendarSettings(holidays=HOLIDAYS), ALMATY, gauge)

    assert checked.today() == dt.datetime.now(ALMATY).date()


async def test_the_server_sets_the_gauge_at_start_up_and_warns(
    aiohttp_client: Any, make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(
        make_settings(kazakhstan={"calendar": {"holidays": [d.isoformat() for d in HOLIDAYS]}})
    )
    app[CALENDAR_WATCH].today = lambda: dt.date(2027, 11, 16)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        client = await aiohttp_client(app)
    metrics = await (await client.get("/metrics")).text()

    assert "qatysu_calendar_days_left 30.0" in metrics.splitlines()
    assert [r.getMessage() for r in caplog.records] == [
        "the holiday calendar runs out in 30 days: the last listed holiday is 2027-12-16; "
        "add next year's holidays to [kazakhstan.calendar] holidays"
    ]


async def test_the_server_checks_again_each_interval(
    aiohttp_client: Any, make_settings: Any
) -> None:
    app = create_app(
        make_settings(kazakhstan={"calendar": {"holidays": [d.isoformat() for d in HOLIDAYS]}})
    )
    checks: list[dt.date] = []

    def a_day_later_each_time() -> dt.date:
        # 1 December at start-up, a day later at each check, up to 31 December.
        checks.append(dt.date(2027, 12, min(len(checks) + 1, 31)))
        return checks[-1]

    checked = app[CALENDAR_WATCH]
    checked.today = a_day_later_each_time
    checked.interval = 0.001

    await aiohttp_client(app)
    for _ in range(1000):
        if len(checks) >= 31:
            break
        await asyncio.sleep(0.005)

    assert checks[0] == dt.date(2027, 12, 1)
    assert gauge_value(checked) == (LAST_HOLIDAY - dt.date(2027, 12, 31)).days == -15
