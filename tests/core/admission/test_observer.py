"""The observer: each tick of the loop-lag probe turns delay and pressure into admission's
state, and a few times a second into the gauges."""

from __future__ import annotations

import time
from typing import Any

import pytest

from core import keys
from core.admission.observer import Observer
from core.lifecycle import TICK
from core.metrics import Metrics
from core.storage.writer import Writer

ADMISSION = {"enabled": True}


async def test_the_loops_lateness_on_a_probe_tick_raises_the_edge_probability(
    make_client: Any,
) -> None:
    client = await make_client(admission=ADMISSION)
    admission = client.app[keys.ADMISSION]
    probe = client.app[keys.LOOP_LAG]
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
    admission = client.app[keys.ADMISSION]
    client.app[keys.LOOP_LAG].deliver(time.monotonic(), 0.0)
    assert admission.pie.probability < 0.5
    assert admission.edge is not None
    assert admission.edge.probability == 0.5


async def test_storage_pressure_reaches_admission_on_the_next_tick(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(admission=ADMISSION)
    admission = client.app[keys.ADMISSION]
    monkeypatch.setattr(Writer, "pressure", property(lambda writer: 0.25))
    client.app[keys.LOOP_LAG].deliver(time.monotonic(), 0.0)
    assert admission.writer_pressure == 0.25


async def test_the_gauges_are_set_every_seventh_tick(make_client: Any) -> None:
    client = await make_client(admission={**ADMISSION, "fixed_limit": 9})
    metrics = Metrics()
    observer = Observer(
        client.app[keys.ADMISSION], writer=client.app[keys.WRITER], metrics=metrics, tick=TICK
    )

    def limit() -> float | None:
        return metrics.registry.get_sample_value("qatysu_admission_limit")

    for _ in range(6):
        observer.tick(time.monotonic(), 0.0)
    assert limit() == 0.0
    observer.tick(time.monotonic(), 0.0)
    assert limit() == 9.0
