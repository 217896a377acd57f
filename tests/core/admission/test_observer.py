"""The observer: each tick of the loop-lag probe turns delay and pressure into admission's
state, and a few times a second into the gauges."""

from __future__ import annotations

import time
from typing import Any

import pytest

from core.admission import keys as admission_keys
from core.admission.observer import Observer, writes_saturated
from core.http import keys as http_keys
from core.http.lifecycle import TICK
from core.observability.metrics import Metrics
from core.plugin_host.priority import Priority
from core.storage import keys as storage_keys
from core.storage.writer import Writer

ADMISSION = {"enabled": True}


async def test_the_loops_lateness_on_a_probe_tick_raises_the_edge_probability(
    make_client: Any,
) -> None:
    client = await make_client(admission=ADMISSION)
    admission = client.app[admission_keys.ADMISSION]
    probe = client.app[http_keys.LOOP_LAG]
    before = admission.pie.probability
    for _ in range(3):
        probe.deliver(time.monotonic(), 0.5)
    assert admission.pie.probability > before
    assert admission.edge is not None
    assert admission.edge.probability == admission.pie.probability


async def test_an_operators_brownout_is_a_floor_under_the_edge_probability(
    make_client: Any,
) -> None:
    client = await make_client(admission={**ADMISSION, "brownout": 0.5})
    admission = client.app[admission_keys.ADMISSION]
    client.app[http_keys.LOOP_LAG].deliver(time.monotonic(), 0.0)
    assert admission.pie.probability < 0.5
    assert admission.edge is not None
    assert admission.edge.probability == 0.5


async def test_storage_pressure_reaches_admission_on_the_next_tick(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(admission=ADMISSION)
    admission = client.app[admission_keys.ADMISSION]
    monkeypatch.setattr(Writer, "pressure", property(lambda writer: 0.25))
    client.app[http_keys.LOOP_LAG].deliver(time.monotonic(), 0.0)
    assert admission.writer_pressure == 0.25


async def test_the_gauges_are_set_every_seventh_tick(make_client: Any) -> None:
    client = await make_client(admission={**ADMISSION, "fixed_limit": 9})
    metrics = Metrics()
    observer = Observer(
        client.app[admission_keys.ADMISSION],
        writer=client.app[storage_keys.WRITER],
        metrics=metrics,
        tick=TICK,
    )

    def limit() -> float | None:
        return metrics.registry.get_sample_value("qatysu_admission_limit")

    for _ in range(6):
        observer.tick(time.monotonic(), 0.0)
    assert limit() == 0.0
    observer.tick(time.monotonic(), 0.0)
    assert limit() == 9.0


class _Kernel:
    """A probe whose every read reports ``length`` waiting and ``accepted`` taken."""

    def __init__(self, length: int, accepted: int) -> None:
        self.length = length
        self.accepted = accepted

    def read(self) -> tuple[int, int]:
        return self.length, self.accepted


def _observer(client: Any, kernel: _Kernel, metrics: Metrics | None = None) -> Observer:
    return Observer(
        client.app[admission_keys.ADMISSION],
        writer=client.app[storage_keys.WRITER],
        metrics=metrics or Metrics(),
        tick=TICK,
        kernel=kernel,  # type: ignore[arg-type]
    )


async def test_a_standing_accept_queue_raises_the_drop_probability(make_client: Any) -> None:
    client = await make_client(admission=ADMISSION)
    admission = client.app[admission_keys.ADMISSION]
    calm = _observer(client, _Kernel(length=0, accepted=50))
    for _ in range(3):
        calm.tick(time.monotonic(), 0.0)
    assert admission.pie.probability == 0.0
    # 200 waiting while 10 a tick are taken: 0.3 s to wait, far over the target.
    queued = _observer(client, _Kernel(length=200, accepted=10))
    for _ in range(3):
        queued.tick(time.monotonic(), 0.0)
    assert admission.pie.probability > 0.0


async def test_the_kernel_wait_of_accepted_connections_raises_the_drop_probability(
    make_client: Any,
) -> None:
    client = await make_client(admission=ADMISSION)
    admission = client.app[admission_keys.ADMISSION]
    observer = _observer(client, _Kernel(length=0, accepted=1))
    for _ in range(3):
        admission.kernel_wait.add(0.4)
        observer.tick(time.monotonic(), 0.0)
    assert admission.pie.probability > 0.0


async def test_the_accept_queue_gauge_shows_the_longest_queue_since_its_last_update(
    make_client: Any,
) -> None:
    client = await make_client(admission=ADMISSION)
    metrics = Metrics()
    kernel = _Kernel(length=0, accepted=0)
    observer = _observer(client, kernel, metrics)
    for length in (3, 40, 5, 0, 0, 0, 1):  # seven ticks: the gauge updates on the last
        kernel.length = length
        observer.tick(time.monotonic(), 0.0)
    assert metrics.registry.get_sample_value("qatysu_admission_accept_queue_length") == 40.0


class _Controller:
    def __init__(self, *, standing: bool, critical_waiting: int) -> None:
        self.queue_standing = standing
        self._waiting = {Priority.CRITICAL: critical_waiting}

    def queue_length(self, priority: Priority) -> int:
        return self._waiting.get(priority, 0)


@pytest.mark.parametrize(
    ("pressure", "standing", "critical_waiting", "saturated"),
    [
        (0.99, False, 0, False),
        (1.0, False, 0, True),  # the writer is saturated
        (0.0, False, 3, False),  # critical work waits, but no queue stands yet
        (0.0, True, 0, False),  # a standing queue of lower classes only
        (0.0, True, 3, True),  # critical work stands in line
    ],
)
def test_writes_count_as_saturated_when_storage_is_or_critical_work_stands_in_line(
    pressure: float, standing: bool, critical_waiting: int, saturated: bool
) -> None:
    controller = _Controller(standing=standing, critical_waiting=critical_waiting)
    assert writes_saturated(pressure, controller) is saturated  # type: ignore[arg-type]


async def test_the_edge_learns_of_a_standing_kernel_wait_once_an_interval_has_passed(
    make_client: Any,
) -> None:
    client = await make_client(admission=ADMISSION)
    admission = client.app[admission_keys.ADMISSION]
    observer = _observer(client, _Kernel(length=50, accepted=5))
    start = time.monotonic()
    interval = admission.settings.codel_interval
    for now in (start, start + interval / 2, start + 2 * interval):
        admission.kernel_standing.add(0.4)
        observer.tick(now, 0.0)
    assert admission.edge is not None
    assert admission.edge.kernel_queue_standing
