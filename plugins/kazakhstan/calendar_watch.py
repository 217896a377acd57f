"""Warn before the holiday calendar runs out.

Holidays are listed in config a year or two ahead; past the last one, every weekday counts as a
working day and statutory terms end too early. At start-up, and once a day after, the days left
to the last listed holiday go to the ``qatysu_calendar_days_left`` gauge (an alert watches it),
and the first time fewer than ``WARN_BELOW_DAYS`` are left a WARNING names the setting to update.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from core.sdk import METRICS, stop, utcnow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from zoneinfo import ZoneInfo

    from prometheus_client import Gauge

    from plugins.kazakhstan.settings import CalendarSettings

log = logging.getLogger(__name__)

GAUGE_NAME = "qatysu_calendar_days_left"
SETTING = "[kazakhstan.calendar] holidays"
WARN_BELOW_DAYS = 90
CHECK_INTERVAL_SECONDS = 24 * 60 * 60


class CalendarWatch:
    """Days left to the last listed holiday, checked against today in the calendar's zone.

    ``today`` is the clock; tests replace it before the app starts.
    """

    def __init__(
        self,
        settings: CalendarSettings,
        timezone: ZoneInfo,
        gauge: Gauge,
        *,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.last_holiday = settings.last_holiday
        self.gauge = gauge
        self.today: Callable[[], dt.date] = today or (lambda: utcnow().astimezone(timezone).date())
        self.interval = CHECK_INTERVAL_SECONDS
        self._warned = False

    def days_left(self) -> int:
        """Days from today to the last listed holiday; negative once it has passed, 0 when none
        is listed."""
        if self.last_holiday is None:
            return 0
        return (self.last_holiday - self.today()).days

    def check(self) -> int:
        """Set the gauge, and warn once when the calendar runs out within ``WARN_BELOW_DAYS``."""
        days = self.days_left()
        self.gauge.set(days)
        if days < WARN_BELOW_DAYS and not self._warned:
            self._warned = True
            if self.last_holiday is None:
                log.warning("no holidays are listed: add this and next year's to %s", SETTING)
            else:
                log.warning(
                    "the holiday calendar runs out in %d days: the last listed holiday is %s; "
                    "add next year's holidays to %s",
                    days,
                    self.last_holiday.isoformat(),
                    SETTING,
                )
        return days


CALENDAR_WATCH: web.AppKey[CalendarWatch] = web.AppKey("kazakhstan.calendar_watch")


def declare(app: web.Application, settings: CalendarSettings, timezone: ZoneInfo) -> None:
    """Declare the gauge (so ``/metrics`` shows it from the start) and keep the watch."""
    gauge = app[METRICS].add_gauge(
        GAUGE_NAME,
        "Days from today to the last holiday the working-day calendar lists "
        "([kazakhstan.calendar] holidays); negative once it has passed.",
        # Every worker computes the same figure; the lowest live one is the cautious answer.
        multiprocess_mode="livemin",
    )
    app[CALENDAR_WATCH] = CalendarWatch(settings, timezone, gauge)


async def calendar_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """Check at start-up, then once a day for as long as the app runs."""
    watch = app[CALENDAR_WATCH]
    watch.check()

    async def daily() -> None:
        while True:
            await asyncio.sleep(watch.interval)
            watch.check()

    task = asyncio.create_task(daily(), name="kazakhstan.calendar_watch")
    yield
    await stop(task)
