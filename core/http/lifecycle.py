"""Readiness, draining, and the one probe of the event loop's lateness.

How late the loop runs a timer is the plainest sign that it is overloaded. One probe measures
it (``LoopLag``) and every reader gets each of its ticks: the ``qatysu_event_loop_lag_seconds``
gauge, and, with admission on, the admission observer (``core.admission.observer``), which
needs the fine tick. Two probes would measure the same lateness twice and wake the loop twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from core.admission import keys as admission_keys
from core.admission.pie import TICK
from core.background import stop
from core.http import keys as http_keys
from core.observability import keys as observability_keys

log = logging.getLogger(__name__)

# The gauge shows the worst lateness of each quarter of a second, a few times a scrape. With
# admission off nothing needs a finer tick, and the probe ticks at this pace: 67 wake-ups a
# second cost an idle process several times the CPU of four.
GAUGE_PERIOD = 0.25

# A reader of the probe: called every tick with (now, lateness), both in seconds.
TickReader = Callable[[float, float], None]


class Readiness:
    """Whether this instance should receive traffic: false while starting and draining."""

    def __init__(self) -> None:
        self.started = False
        self.draining = False

    @property
    def ready(self) -> bool:
        return self.started and not self.draining


class LoopLag:
    """A timer re-armed every ``tick`` seconds that tells its readers how late it fired.

    A reader that raises is logged and dropped: the others keep their readings.
    """

    def __init__(self, *, tick: float = TICK) -> None:
        if tick <= 0:
            raise ValueError(f"tick must be > 0, got {tick}")
        self.tick = tick
        self._readers: list[TickReader] = []

    def subscribe(self, reader: TickReader) -> None:
        self._readers.append(reader)

    def unsubscribe(self, reader: TickReader) -> None:
        """Stop calling ``reader``; one already dropped for failing is no error."""
        if reader in self._readers:
            self._readers.remove(reader)

    def deliver(self, now: float, lateness: float) -> None:
        """Hand one tick's lateness to every reader."""
        for reader in tuple(self._readers):
            try:
                reader(now, lateness)
            except Exception:
                log.exception("a reader of the event-loop lag failed; it is dropped")
                self._readers.remove(reader)

    async def run(self) -> None:
        tick = self.tick
        while True:
            expected = time.monotonic() + tick
            await asyncio.sleep(tick)
            now = time.monotonic()
            self.deliver(now, max(0.0, now - expected))


class WorstLateness:
    """A reader that sets a gauge to the worst lateness of each ``period`` of ticks.

    The worst, not the last: a scrape then sees a stall that happened between two of its reads.
    """

    __slots__ = ("_due", "_period", "_set", "_worst")

    def __init__(self, set_gauge: Callable[[float], None], *, period: float = GAUGE_PERIOD) -> None:
        self._set = set_gauge
        self._period = period
        self._worst = 0.0
        self._due = float("-inf")

    def __call__(self, now: float, lateness: float) -> None:
        if lateness > self._worst:
            self._worst = lateness
        if now >= self._due:
            self._set(self._worst)
            self._worst = 0.0
            self._due = now + self._period


async def event_loop_lag_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the probe for the app's lifetime, with the gauge as its first reader; cleanup
    contexts after this one may subscribe to ``app[http_keys.LOOP_LAG]``."""
    probe = app[http_keys.LOOP_LAG] = LoopLag(
        tick=TICK if admission_keys.ADMISSION in app else GAUGE_PERIOD
    )
    probe.subscribe(WorstLateness(app[observability_keys.METRICS].event_loop_lag.set))
    task = asyncio.create_task(probe.run(), name="qatysu-loop-lag")
    yield
    await stop(task)
