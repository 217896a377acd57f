"""The admission observer: every tick, measure delay and pressure and feed them to admission."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from core import keys
from core.admission.priority import Priority

if TYPE_CHECKING:
    from aiohttp import web

    from core.admission.state import Admission

TICK = 0.015
_GAUGE_EVERY = 7  # ticks between gauge updates: about ten a second


async def observe(admission: Admission, app: web.Application) -> None:
    """Run forever: the PIE probability from the larger of the mean sojourn time and the loop's
    lateness, the storage pressure into the controller, and (a few times a second) the gauges."""
    metrics = app[keys.METRICS]
    writer = app[keys.WRITER]
    controller = admission.controller
    inflight = {p: metrics.admission_inflight.labels(p.name.lower()) for p in Priority}
    high = admission.settings.writer_pressure_high
    brownout = admission.settings.brownout
    tick = 0
    while True:
        expected = time.monotonic() + TICK
        await asyncio.sleep(TICK)
        now = time.monotonic()
        lag = max(0.0, now - expected)
        probability = admission.pie.update(
            max(admission.sojourn.take_mean(now), lag), elapsed=TICK + lag
        )
        if admission.edge is not None:
            admission.edge.probability = max(probability, brownout)
        admission.writer_pressure = writer.pressure
        controller.set_pressure(min(1.0, admission.writer_pressure / high))
        tick += 1
        if tick % _GAUGE_EVERY == 0:
            for priority, gauge in inflight.items():
                gauge.set(controller.inflight(priority))
            metrics.admission_limit.set(controller.current_limit)
            metrics.admission_queue_length.set(controller.queue_length())
            metrics.admission_drop_probability.set(probability)
            metrics.writer_queue_length.set(writer.queue_length)
