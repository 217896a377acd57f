"""Readiness, draining and the event-loop lag probe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from aiohttp import web

from core import keys
from core.background import stop


class Readiness:
    """Whether this instance should receive traffic: false while starting and draining."""

    def __init__(self) -> None:
        self.started = False
        self.draining = False

    @property
    def ready(self) -> bool:
        return self.started and not self.draining


async def event_loop_lag_ctx(app: web.Application) -> AsyncIterator[None]:
    """Measure how late a periodic timer fires: the plainest sign of an overloaded loop."""

    async def probe() -> None:
        gauge = app[keys.METRICS].event_loop_lag
        period = 0.25
        while True:
            expected = time.perf_counter() + period
            await asyncio.sleep(period)
            gauge.set(max(0.0, time.perf_counter() - expected))

    task = asyncio.create_task(probe(), name="qatysu-loop-lag")
    yield
    await stop(task)
