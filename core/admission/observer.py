"""The admission observer: on every tick of the loop-lag probe, feed delay and pressure to
admission.

It keeps no timer of its own: ``core.lifecycle.LoopLag`` measures the loop's lateness once for
every reader, and calls ``Observer.tick`` with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.admission.priority import Priority

if TYPE_CHECKING:
    from core.admission.state import Admission
    from core.metrics import Metrics
    from core.storage.writer import Writer

_GAUGE_EVERY = 7  # ticks between gauge updates: about ten a second


class Observer:
    """Each tick: the PIE probability from the larger of the mean sojourn time and the loop's
    lateness, the storage pressure into the controller, and (a few times a second) the gauges."""

    def __init__(
        self, admission: Admission, *, writer: Writer, metrics: Metrics, tick: float
    ) -> None:
        self._admission = admission
        self._writer = writer
        self._metrics = metrics
        self._tick = tick
        self._inflight = {p: metrics.admission_inflight.labels(p.name.lower()) for p in Priority}
        self._ticks = 0

    def tick(self, now: float, lateness: float) -> None:
        admission = self._admission
        controller = admission.controller
        probability = admission.pie.update(
            max(admission.sojourn.take_mean(now), lateness), elapsed=self._tick + lateness
        )
        if admission.edge is not None:
            admission.edge.probability = max(probability, admission.settings.brownout)
        admission.writer_pressure = self._writer.pressure
        controller.set_pressure(
            min(1.0, admission.writer_pressure / admission.settings.writer_pressure_high)
        )
        self._ticks += 1
        if self._ticks % _GAUGE_EVERY == 0:
            metrics = self._metrics
            for priority, gauge in self._inflight.items():
                gauge.set(controller.inflight(priority))
            metrics.admission_limit.set(controller.current_limit)
            metrics.admission_queue_length.set(controller.queue_length())
            metrics.admission_drop_probability.set(probability)
            metrics.writer_queue_length.set(self._writer.queue_length)
