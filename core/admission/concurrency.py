"""Concurrency limits: how many requests may run at once, fixed or learned from latency.

The limit is server-wide, so only what the server itself shows may move it (``outcome``): the
run time of a request it served, and a failure for want of capacity (a 503 or 504, a storage
failure, a timeout). A client's error is not a signal about the server: a 4xx, a 500 that its
own content provoked, or a request it abandoned moves nothing. Were they samples, a hostile
client could steer the limit for everyone: each 5xx used to multiply it by 0.9, and a flood of
cheap 4xx would drag the latency baseline down until honest requests looked slow.
"""

from __future__ import annotations

import asyncio
import enum
import math
from typing import TYPE_CHECKING, Protocol

from core.storage.database import storage_failure

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.admission.controller import Ticket


class LimitAlgorithm(Protocol):
    """Decides the concurrency limit from the samples of finished requests."""

    @property
    def limit(self) -> int: ...

    def on_sample(self, rtt: float, inflight: int, dropped: bool) -> None:
        """Record one finished request: its run time, the inflight count when it started, and
        whether it was dropped (failed for want of capacity: see ``outcome``)."""


class FixedLimit:
    """A limit an operator chose; samples change nothing."""

    def __init__(self, *, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self._limit = limit

    @property
    def limit(self) -> int:
        return self._limit

    def on_sample(self, rtt: float, inflight: int, dropped: bool) -> None:
        """Ignored: the limit is fixed."""


def sqrt_queue_size(limit: int) -> float:
    """Growth allowance: the square root of the limit, so small limits grow fast, large ones
    gently; never below 4, so a low limit can still climb."""
    return max(4.0, math.sqrt(limit))


class _ExponentialAverage:
    """A plain mean of the first ``warmup`` samples, then an exponential moving average."""

    def __init__(self, *, window: int, warmup: int = 10) -> None:
        self._factor = 2.0 / (window + 1)
        self._warmup = warmup
        self._count = 0
        self.value = 0.0

    def add(self, sample: float) -> float:
        if self._count < self._warmup:
            self._count += 1
            self.value += (sample - self.value) / self._count
        else:
            self.value += (sample - self.value) * self._factor
        return self.value


class Gradient2Limit:
    """Adaptive limit after Netflix concurrency-limits' Gradient2.

    A long-term exponential average of the run time is the baseline; each sample compares it
    with the latest run time::

        gradient = clamp(rtt_tolerance * long_rtt / rtt, 0.5, 1.0)
        target = limit * gradient + queue_size(limit)
        limit = limit * (1 - smoothing) + target * smoothing

    so the limit climbs by about ``smoothing * queue_size`` per sample while run times stay
    within ``rtt_tolerance`` of the baseline, and sinks once they rise beyond it. A dropped
    request multiplies the limit by ``backoff_ratio``. Samples taken while fewer than half the
    limit were in flight do not move it: the load, not the server, set their pace.
    """

    def __init__(
        self,
        *,
        initial_limit: int = 20,
        min_limit: int = 4,
        max_limit: int = 1000,
        smoothing: float = 0.2,
        rtt_tolerance: float = 1.5,
        long_window: int = 600,
        backoff_ratio: float = 0.9,
        queue_size: Callable[[int], float] = sqrt_queue_size,
    ) -> None:
        if not 1 <= min_limit <= initial_limit <= max_limit:
            raise ValueError("need 1 <= min_limit <= initial_limit <= max_limit")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        if rtt_tolerance < 1.0:
            raise ValueError(f"rtt_tolerance must be >= 1, got {rtt_tolerance}")
        if not 0.0 < backoff_ratio < 1.0:
            raise ValueError(f"backoff_ratio must be in (0, 1), got {backoff_ratio}")
        self._estimate = float(initial_limit)
        self._min_limit = min_limit
        self._max_limit = max_limit
        self._smoothing = smoothing
        self._rtt_tolerance = rtt_tolerance
        self._backoff_ratio = backoff_ratio
        self._queue_size = queue_size
        self._long_rtt = _ExponentialAverage(window=long_window)

    @property
    def limit(self) -> int:
        return int(self._estimate)

    def on_sample(self, rtt: float, inflight: int, dropped: bool) -> None:
        if dropped:
            # A dropped request's run time is the timeout, not the server's pace: back off
            # without letting it skew the baseline.
            self._set_estimate(self._estimate * self._backoff_ratio)
            return
        if rtt <= 0.0:
            return
        long_rtt = self._long_rtt.add(rtt)
        if long_rtt / rtt > 2.0:
            # Latency fell back after a long overload; pull the inflated baseline down faster
            # than the average alone would, or the limit would stay high for minutes.
            self._long_rtt.value *= 0.9
        if inflight < self._estimate / 2:
            return
        gradient = max(0.5, min(1.0, self._rtt_tolerance * long_rtt / rtt))
        target = self._estimate * gradient + self._queue_size(self.limit)
        self._set_estimate(self._estimate * (1 - self._smoothing) + target * self._smoothing)

    def _set_estimate(self, estimate: float) -> None:
        self._estimate = max(float(self._min_limit), min(float(self._max_limit), estimate))


class Outcome(enum.Enum):
    """What a finished request tells the limit."""

    SERVED = "served"  # a latency sample
    OVERLOADED = "overloaded"  # a drop: the server failed for want of capacity
    IGNORED = "ignored"  # nothing: the client's own doing, or a bug


# A 503 is the server's own refusal (storage saturated, restarting or failing, a shed
# request); a 504 is a timeout. Any other 5xx, a 500 above all, is a bug or the request's
# content, and the slot's run time measured it, not the server's capacity.
_OVERLOAD_STATUSES = frozenset({503, 504})


def outcome(status: int) -> Outcome:
    """The outcome of a request answered with ``status``."""
    if status < 400:
        return Outcome.SERVED
    return Outcome.OVERLOADED if status in _OVERLOAD_STATUSES else Outcome.IGNORED


def failure_outcome(error: BaseException) -> Outcome:
    """The outcome of a request whose handler raised ``error``."""
    if isinstance(error, asyncio.CancelledError):
        return Outcome.IGNORED  # the client left, or the server is stopping
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return outcome(status)
    # A timeout or a failing database is the server's; anything else is a bug, answered 500.
    return Outcome.OVERLOADED if storage_failure(error) else Outcome.IGNORED


def settle(ticket: Ticket, result: Outcome) -> None:
    """Free ``ticket``'s slot, telling the limit what ``result`` shows and nothing more."""
    if result is Outcome.IGNORED:
        ticket.abandon()
    else:
        ticket.release(dropped=result is Outcome.OVERLOADED)
