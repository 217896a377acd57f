from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from sqlalchemy import exc as sa_exc

from core.admission.concurrency import (
    FixedLimit,
    Gradient2Limit,
    Outcome,
    failure_outcome,
    outcome,
    settle,
    sqrt_queue_size,
)
from core.admission.controller import AdmissionController
from core.plugin_host.priority import Priority
from core.wire.errors import BadRequest, Conflict, OutcomeUnknown, ServiceUnavailable
from tests.support.admission import FakeClock


def saturate(limiter: Gradient2Limit, rtt: float, samples: int) -> None:
    """Feed samples taken with every slot of the current limit busy."""
    for _ in range(samples):
        limiter.on_sample(rtt, limiter.limit, False)


def test_fixed_limit_ignores_samples() -> None:
    limit = FixedLimit(limit=7)
    limit.on_sample(10.0, 7, True)
    assert limit.limit == 7


def test_fixed_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        FixedLimit(limit=0)


def test_queue_size_is_the_square_root_of_the_limit_but_at_least_four() -> None:
    assert [sqrt_queue_size(n) for n in (1, 16, 100)] == [4.0, 4.0, 10.0]


def test_limit_grows_while_saturated_at_steady_low_latency() -> None:
    limiter = Gradient2Limit(initial_limit=20)
    saturate(limiter, 0.010, 50)
    assert limiter.limit > 40


def test_limit_shrinks_when_latency_rises_well_above_the_baseline() -> None:
    limiter = Gradient2Limit(initial_limit=100)
    saturate(limiter, 0.010, 20)
    grown = limiter.limit
    saturate(limiter, 0.100, 20)
    assert limiter.limit < grown * 0.5


def test_baseline_inflated_by_an_overload_comes_down_when_latency_recovers() -> None:
    limiter = Gradient2Limit(initial_limit=100)
    saturate(limiter, 0.100, 10)  # the baseline learns an overloaded 100 ms
    saturate(limiter, 0.010, 30)  # back to 10 ms: the baseline must follow quickly
    recovered = limiter.limit
    saturate(limiter, 0.060, 5)  # an overload again, though far under the old 100 ms
    assert limiter.limit < recovered


def test_latency_within_tolerance_does_not_shrink_the_limit() -> None:
    limiter = Gradient2Limit(initial_limit=100, rtt_tolerance=1.5)
    saturate(limiter, 0.010, 20)
    grown = limiter.limit
    saturate(limiter, 0.014, 5)
    assert limiter.limit >= grown


def test_limit_stays_within_min_and_max() -> None:
    limiter = Gradient2Limit(initial_limit=10, min_limit=5, max_limit=30)
    saturate(limiter, 0.010, 500)
    high = limiter.limit
    for _ in range(500):
        limiter.on_sample(1.0, limiter.limit, True)
    assert (high, limiter.limit) == (30, 5)


def test_a_drop_backs_off_multiplicatively() -> None:
    limiter = Gradient2Limit(initial_limit=100, backoff_ratio=0.9)
    limiter.on_sample(0.010, 100, True)
    limiter.on_sample(0.010, 90, True)
    assert limiter.limit == 81


def test_app_limited_samples_do_not_grow_the_limit() -> None:
    limiter = Gradient2Limit(initial_limit=40)
    for _ in range(100):
        limiter.on_sample(0.010, 19, False)
    assert limiter.limit == 40


def test_samples_with_half_the_limit_in_flight_count() -> None:
    limiter = Gradient2Limit(initial_limit=40)
    limiter.on_sample(0.010, 20, False)
    assert limiter.limit > 40


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"min_limit": 0}, "min_limit"),
        ({"initial_limit": 2, "min_limit": 4}, "min_limit"),
        ({"initial_limit": 2000}, "max_limit"),
        ({"smoothing": 0.0}, "smoothing"),
        ({"rtt_tolerance": 0.9}, "rtt_tolerance"),
        ({"backoff_ratio": 1.0}, "backoff_ratio"),
    ],
)
def test_invalid_configuration_is_rejected(config: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Gradient2Limit(**config)  # type: ignore[arg-type]


# -- what a finished request tells the limit ------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Outcome.SERVED),
        (201, Outcome.SERVED),
        (304, Outcome.SERVED),
        (400, Outcome.IGNORED),
        (401, Outcome.IGNORED),
        (404, Outcome.IGNORED),
        (409, Outcome.IGNORED),
        (422, Outcome.IGNORED),
        (429, Outcome.IGNORED),
        (500, Outcome.IGNORED),
        (501, Outcome.IGNORED),
        (503, Outcome.OVERLOADED),
        (504, Outcome.OVERLOADED),
    ],
)
def test_only_success_and_the_servers_own_refusals_are_signals(
    status: int, expected: Outcome
) -> None:
    assert outcome(status) is expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            ServiceUnavailable("storage is saturated", reason="writer_queue_full"),
            Outcome.OVERLOADED,
        ),
        (OutcomeUnknown("storage did not confirm the commit"), Outcome.OVERLOADED),
        (TimeoutError(), Outcome.OVERLOADED),
        (
            sa_exc.OperationalError("SELECT 1", {}, Exception("database is locked")),
            Outcome.OVERLOADED,
        ),
        (BadRequest("the body is nested deeper than 64 levels"), Outcome.IGNORED),
        (Conflict("the petition is closed"), Outcome.IGNORED),
        (web.HTTPNotFound(), Outcome.IGNORED),
        (web.HTTPFound("/elsewhere"), Outcome.SERVED),
        (RecursionError(), Outcome.IGNORED),
        (KeyError("a bug"), Outcome.IGNORED),
        (asyncio.CancelledError(), Outcome.IGNORED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_a_failure_is_a_drop_only_when_the_server_lacked_capacity(
    error: BaseException, expected: Outcome
) -> None:
    assert failure_outcome(error) is expected


class RecordingLimit:
    """A fixed limit that records every sample it is given."""

    limit = 10

    def __init__(self) -> None:
        self.samples: list[tuple[float, int, bool]] = []

    def on_sample(self, rtt: float, inflight: int, dropped: bool) -> None:
        self.samples.append((rtt, inflight, dropped))


@pytest.mark.parametrize(
    ("result", "samples"),
    [
        (Outcome.SERVED, [(0.25, 1, False)]),
        (Outcome.OVERLOADED, [(0.25, 1, True)]),
        (Outcome.IGNORED, []),
    ],
)
async def test_settling_frees_the_slot_and_samples_only_what_the_server_showed(
    result: Outcome, samples: list[tuple[float, int, bool]], clock: FakeClock
) -> None:
    limit = RecordingLimit()
    controller = AdmissionController(limit=limit, clock=clock)
    ticket = await controller.acquire(Priority.CRITICAL)
    clock.advance(0.25)
    settle(ticket, result)
    assert limit.samples == samples
    assert controller.total_inflight == 0
