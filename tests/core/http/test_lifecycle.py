"""The one probe of the event loop's lateness, and the gauge it feeds."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import pytest

from core.background import stop
from core.http import keys as http_keys
from core.http.lifecycle import GAUGE_PERIOD, TICK, LoopLag, WorstLateness


async def test_every_reader_gets_each_tick_and_a_stall_shows_as_lateness() -> None:
    probe = LoopLag(tick=0.005)
    first: list[float] = []
    second: list[float] = []
    probe.subscribe(lambda now, lateness: first.append(lateness))
    probe.subscribe(lambda now, lateness: second.append(lateness))
    task = asyncio.create_task(probe.run())
    await asyncio.sleep(0.02)
    time.sleep(0.1)  # noqa: ASYNC251 - the loop is blocked, as CPU-bound work would block it
    await asyncio.sleep(0.02)
    await stop(task)
    assert first == second
    assert max(first) >= 0.09
    assert min(first) >= 0.0


def test_a_failing_reader_is_logged_and_dropped_and_the_others_keep_reading(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = LoopLag()
    seen: list[tuple[float, float]] = []
    calls = 0

    def failing(now: float, lateness: float) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug in a reader")

    probe.subscribe(failing)
    probe.subscribe(lambda now, lateness: seen.append((now, lateness)))
    with caplog.at_level(logging.ERROR, logger="core.http.lifecycle"):
        probe.deliver(1.0, 0.5)
        probe.deliver(2.0, 0.0)
    assert calls == 1
    assert seen == [(1.0, 0.5), (2.0, 0.0)]
    [record] = caplog.records
    assert record.exc_info is not None
    probe.unsubscribe(failing)  # already dropped: no error


def test_an_unsubscribed_reader_gets_no_more_ticks() -> None:
    probe = LoopLag()
    seen: list[float] = []

    def reader(now: float, lateness: float) -> None:
        seen.append(lateness)

    probe.subscribe(reader)
    probe.deliver(1.0, 0.1)
    probe.unsubscribe(reader)
    probe.deliver(2.0, 0.2)
    assert seen == [0.1]


def test_a_tick_must_be_positive() -> None:
    with pytest.raises(ValueError, match="tick"):
        LoopLag(tick=0.0)


def test_the_gauge_shows_the_worst_lateness_of_each_period() -> None:
    shown: list[float] = []
    reader = WorstLateness(shown.append, period=0.25)
    reader(10.00, 0.01)  # the first tick sets the gauge at once
    reader(10.10, 0.30)
    reader(10.20, 0.02)
    reader(10.25, 0.00)
    reader(10.30, 0.01)
    reader(10.50, 0.00)
    assert shown == [0.01, 0.30, 0.01]


def _gauge(metrics: str) -> float:
    match = re.search(r"^qatysu_event_loop_lag_seconds (\S+)$", metrics, re.MULTILINE)
    assert match is not None
    return float(match.group(1))


# A stall of 0.3 s delays a timer due during it by what is left of it: all of it on the fine
# tick (a timer is due within 15 ms of its start), at least 0.05 s on the gauge's own pace.
@pytest.mark.parametrize(
    ("admission", "at_least"), [(True, 0.28), (False, 0.05)], ids=["admission-on", "admission-off"]
)
async def test_a_stalled_loop_shows_in_the_event_loop_lag_gauge(
    make_client: Any, admission: bool, at_least: float
) -> None:
    client = await make_client(admission={"enabled": admission})
    await asyncio.sleep(0.05)
    calm = _gauge(await (await client.get("/metrics")).text())
    time.sleep(0.3)  # noqa: ASYNC251 - a stall, as CPU-bound work would cause
    stalled = _gauge(await (await client.get("/metrics")).text())
    assert calm < 0.25
    assert stalled >= at_least


async def test_one_timer_measures_the_lag_for_the_gauge_and_admission(make_client: Any) -> None:
    client = await make_client(admission={"enabled": True})
    names = sorted(task.get_name() for task in asyncio.all_tasks())
    assert names.count("qatysu-loop-lag") == 1
    assert not [name for name in names if "observer" in name]
    assert client.app[http_keys.LOOP_LAG].tick == TICK


async def test_with_admission_off_the_probe_ticks_at_the_gauges_pace(make_client: Any) -> None:
    client = await make_client(admission={"enabled": False})
    assert client.app[http_keys.LOOP_LAG].tick == GAUGE_PERIOD
