"""A short overload run at 3x in modes 2 and 4: the answers' form, never their timing.

Mode 2 is Qatysu alone; mode 4 is HAProxy (the shipped config/haproxy/haproxy.cfg) in front of
it, inside the same CPU cap. Capacity is found by a coarse open-loop step search on mode 2, then
each mode is flooded at three times it for a few seconds. The run asserts that no 5xx other than
503 was answered, that every 429 and 503 carried Retry-After, and that the server answers 2xx
again once the flood is over. How fast or how much is the benchmark's business, not this test's,
with one exception that compares the run with itself: mode 2 flooded at ten times capacity must
not collapse, that is, serve within the SLO no fewer requests a second than at one time it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from loadtests.capacity import find_capacity
from loadtests.flood import FloodResult, parse_mix
from loadtests.overload import step_passes
from loadtests.servers import ProxySettings, haproxy_available, pin_this_process
from loadtests.stacks import (
    MODES,
    CitizenCounter,
    Stack,
    StepRecord,
    flood_config,
    measure_step,
    running_stack,
)
from tests.support.services import service_unavailable

pytestmark = pytest.mark.slow

CPU_CAP = 0.2
MIX = "read=90,sign=10"
FLOOD_SECONDS = 3.0
# The most the in-process generator offers on schedule, as in the benchmark's --max-rate: the
# capacity is not searched above a tenth of it, so the 10x step is really offered.
MAX_RATE = 2000.0
RECOVERY_ATTEMPTS = 8


@pytest.fixture(scope="module", autouse=True)
def generator_core() -> Iterator[None]:
    """The generator on the other core than the servers, as in the benchmark."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    pin_this_process(1)
    yield
    os.sched_setaffinity(0, before)


def flood(stack: Stack, rate: float, seconds: float, citizens: CitizenCounter) -> StepRecord:
    base = flood_config(
        stack,
        parse_mix(MIX, stack.petition_id),
        give_up=2.0,
        clients=2048,
        requests_per_connection=3,
    )
    return measure_step(
        stack, base, rate=rate, duration=seconds, citizens=citizens, seed=int(rate), label="x"
    )


def recovered(stack: Stack, citizens: CitizenCounter) -> FloodResult | None:
    """A gentle flood, repeated until every request of one gets a 2xx; None if none did."""
    for _ in range(RECOVERY_ATTEMPTS):
        gentle = flood(stack, 20.0, 1.0, citizens).result
        if gentle.outcome_count("2xx") == gentle.scheduled > 0:
            return gentle
    return None


def capped_stack(key: str, workdir: Path) -> AbstractContextManager[Stack]:
    return running_stack(
        MODES[key],
        workdir=workdir,
        name=f"smoke-{key}",
        cpu_fraction=CPU_CAP,
        proxy_settings=ProxySettings(),
    )


def assert_answers_are_well_formed(result: FloodResult) -> None:
    assert result.outcome_count("other_5xx") == 0, result.outcome_totals
    assert result.missing_retry_after == 0, result.outcome_totals


def test_three_times_capacity_in_modes_2_and_4(tmp_path: Path) -> None:
    if not haproxy_available():
        service_unavailable("haproxy is not installed (apt-get install haproxy)")
    citizens = CitizenCounter()
    with capped_stack("direct-on", tmp_path) as stack:
        search = find_capacity(
            lambda rate: step_passes(flood(stack, rate, 1.0, citizens)),
            start=40,
            factor=2,
            precision=0.5,
            ceiling=MAX_RATE / 10,
            max_steps=5,
        )
        assert search.capacity > 0, search.steps
        time.sleep(1.0)
        mode_2 = flood(stack, 3 * search.capacity, FLOOD_SECONDS, citizens)
        assert_answers_are_well_formed(mode_2.result)
        assert recovered(stack, citizens) is not None
        time.sleep(1.0)
        once = flood(stack, search.capacity, FLOOD_SECONDS, citizens).result
        time.sleep(1.0)
        tenfold = flood(stack, 10 * search.capacity, FLOOD_SECONDS, citizens).result
        assert_answers_are_well_formed(tenfold)
        # No collapse: more offered never means less done.
        assert tenfold.goodput >= once.goodput, (once.summary(), tenfold.summary())
        assert recovered(stack, citizens) is not None
    with capped_stack("proxy-on", tmp_path) as stack:
        mode_4 = flood(stack, 3 * search.capacity, FLOOD_SECONDS, citizens)
        assert_answers_are_well_formed(mode_4.result)
        assert recovered(stack, citizens) is not None
    # Both floods really reached the servers: every request due was sent and answered somehow.
    for record in (mode_2, mode_4):
        assert record.result.sent == record.result.scheduled
