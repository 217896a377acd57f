"""The admission observer: on every tick of the loop-lag probe, feed delay and pressure to
admission.

It keeps no timer of its own: ``core.http.lifecycle.LoopLag`` measures the loop's lateness once for
every reader, and calls ``Observer.tick`` with it.

The delay PIE acts on is the largest of four views of the same queue: the mean sojourn of the
requests admission saw, the loop's lateness, the mean kernel wait of the connections accepted
this tick (``core.admission.kernel``), and the wait the listener's accept queue implies (its
length over the accept rate). The last two see what no stamp taken in Python can: connections
the loop has not accepted yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.admission.kernel import accept_queue_delay
from core.plugin_host.priority import Priority

if TYPE_CHECKING:
    from core.admission.controller import AdmissionController
    from core.admission.kernel import KernelQueueProbe
    from core.admission.state import Admission
    from core.observability.metrics import Metrics
    from core.storage.writer import Writer

_GAUGE_EVERY = 7  # ticks between gauge updates: about ten a second


def writes_saturated(writer_pressure: float, controller: AdmissionController) -> bool:
    """Whether a critical write would only be refused later: the writer is saturated, or
    critical work already waits in a standing queue."""
    return writer_pressure >= 1.0 or (
        controller.queue_standing and controller.queue_length(Priority.CRITICAL) > 0
    )


class Observer:
    """Each tick: the PIE probability from the larger of the mean sojourn time and the loop's
    lateness, the storage pressure into the controller, and (a few times a second) the gauges."""

    def __init__(
        self,
        admission: Admission,
        *,
        writer: Writer,
        metrics: Metrics,
        tick: float,
        kernel: KernelQueueProbe | None = None,
    ) -> None:
        self._admission = admission
        self._kernel = kernel
        self._accept_queue_peak = 0
        self._writer = writer
        self._metrics = metrics
        self._tick = tick
        self._inflight = {p: metrics.admission_inflight.labels(p.name.lower()) for p in Priority}
        self._ticks = 0

    def tick(self, now: float, lateness: float) -> None:
        admission = self._admission
        controller = admission.controller
        elapsed = self._tick + lateness
        delay = max(
            admission.sojourn.take_mean(now), lateness, admission.kernel_wait.take_mean(now)
        )
        standing = False
        if self._kernel is not None:
            length, accepted = self._kernel.read()
            self._accept_queue_peak = max(self._accept_queue_peak, length)
            delay = max(delay, accept_queue_delay(length, accepted, elapsed))
            standing = admission.kernel_standing.update(now, length)
        probability = admission.pie.update(delay, elapsed=elapsed)
        admission.writer_pressure = self._writer.pressure
        if admission.edge is not None:
            admission.edge.probability = max(probability, admission.settings.brownout)
            admission.edge.kernel_queue_standing = standing
            admission.edge.writes_saturated = writes_saturated(
                admission.writer_pressure, controller
            )
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
            # The longest queue since the last update: a sample would miss most bursts.
            metrics.admission_accept_queue_length.set(self._accept_queue_peak)
            self._accept_queue_peak = 0
