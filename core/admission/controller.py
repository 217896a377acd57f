"""The admission controller: a concurrency limit with priorities, a bounded queue and CoDel.

A request asks for a slot with ``acquire(priority)``. While slots are free it starts at once
(no suspension). Otherwise it waits in its priority's queue, which is bounded in length and
in time: a waiter is shed (``Shed``) when the queue is full, when it has waited longer than
CoDel allows, when its deadline passes, or when its client has gone. Releasing a slot starts
the best waiter: the highest priority first; within a priority the oldest first, except while a
standing queue exists, when the newest goes first (adaptive LIFO), because the oldest are
about to be shed and the newest still have a client waiting for them.

Slot shares, with ``L`` the current limit:

- CRITICAL may use all ``L`` slots;
- NORMAL and SHEDDABLE start only while fewer than ``max(1, floor(L * share))`` slots are
  busy, where ``share = min(1 - critical_reserve, 1 - pressure / 2)``, so ``critical_reserve``
  of the capacity stays free for critical work, and a saturated storage writer (pressure 1.0)
  leaves the lower classes half the limit at most;
- a class does not start ahead of a waiter of its own or of a higher priority.

All state belongs to one event loop; nothing here is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from core.plugin_host.priority import Priority

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from core.admission.concurrency import LimitAlgorithm

ShedReason = Literal["queue_full", "codel", "deadline", "disconnected"]

# Retry-After hints for shed requests, in seconds: the base, plus up to this much more as the
# queue (or the storage pressure) approaches full.
_RETRY_AFTER_BASE = 1
_RETRY_AFTER_EXTRA = 3


class Shed(Exception):
    """A request refused by admission; the HTTP layer turns it into a 503 with Retry-After."""

    def __init__(self, *, reason: ShedReason, priority: Priority, retry_after: float) -> None:
        super().__init__(f"{priority.name} request shed: {reason}")
        self.reason: ShedReason = reason
        self.priority = priority
        self.retry_after = retry_after


class Ticket:
    """One held slot. ``release()`` frees it; releasing twice is harmless.

    As a context manager it releases on exit, counting an escaping ``Exception`` as a drop;
    callers that raise exceptions for ordinary responses should call ``release()`` themselves.
    """

    __slots__ = ("_controller", "_released", "inflight_at_start", "priority", "started_at")

    def __init__(
        self,
        controller: AdmissionController,
        priority: Priority,
        started_at: float,
        inflight_at_start: int,
    ) -> None:
        self._controller = controller
        self._released = False
        self.priority = priority
        self.started_at = started_at
        self.inflight_at_start = inflight_at_start

    def release(self, *, dropped: bool = False) -> None:
        if not self._released:
            self._released = True
            self._controller._finish(self, dropped=dropped, sample=True)

    def abandon(self) -> None:
        """Free the slot without a latency sample: the work never ran."""
        if not self._released:
            self._released = True
            self._controller._finish(self, dropped=False, sample=False)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release(dropped=isinstance(exc, Exception))


@dataclass(slots=True, eq=False)
class _Waiter:
    priority: Priority
    enqueued_at: float
    deadline: float | None
    is_cancelled: Callable[[], bool] | None
    future: asyncio.Future[Ticket] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class AdmissionController:
    """See the module docstring. Call ``run_sweeper()`` as a background task."""

    def __init__(
        self,
        *,
        limit: LimitAlgorithm,
        queue_capacity: int = 1000,
        critical_reserve: float = 0.2,
        codel_target: float = 0.005,
        codel_interval: float = 0.100,
        clock: Callable[[], float] = time.monotonic,
        on_wait: Callable[[Priority, float], None] | None = None,
        on_shed: Callable[[str, Priority], None] | None = None,
    ) -> None:
        if queue_capacity < 0:
            raise ValueError(f"queue_capacity must be >= 0, got {queue_capacity}")
        if not 0.0 <= critical_reserve < 1.0:
            raise ValueError(f"critical_reserve must be in [0, 1), got {critical_reserve}")
        if not 0.0 < codel_target < codel_interval:
            raise ValueError("need 0 < codel_target < codel_interval")
        self._limit = limit
        self._queue_capacity = queue_capacity
        self._critical_reserve = critical_reserve
        self._codel_target = codel_target
        self._codel_interval = codel_interval
        self._clock = clock
        self._on_wait = on_wait
        self._on_shed = on_shed
        self._pressure = 0.0
        self._inflight = [0] * len(Priority)
        self._total_inflight = 0
        self._queues: tuple[deque[_Waiter], ...] = tuple(deque() for _ in Priority)
        self._queued = 0
        # CoDel: the smallest queueing delay seen in the current interval decides, when the
        # interval ends, whether a standing queue exists.
        self._standing = False
        self._interval_end = -math.inf
        self._interval_min_delay: float | None = None

    # -- read-only state, for metrics ---------------------------------------------------------

    def inflight(self, priority: Priority) -> int:
        return self._inflight[priority]

    @property
    def total_inflight(self) -> int:
        return self._total_inflight

    @property
    def current_limit(self) -> int:
        return self._limit.limit

    def queue_length(self, priority: Priority | None = None) -> int:
        return self._queued if priority is None else len(self._queues[priority])

    @property
    def queue_standing(self) -> bool:
        """Whether CoDel sees a standing queue (waits capped at the target, LIFO order)."""
        return self._standing

    # -- inputs -------------------------------------------------------------------------------

    def set_pressure(self, factor: float) -> None:
        """Storage back-pressure: 0.0 none, 1.0 (or more) the writer is saturated.

        Only the NORMAL and SHEDDABLE share shrinks (down to half the limit at 1.0): a slow
        database should shed the lower classes early, while critical writes, which are what
        the writer exists for, keep their whole limit.
        """
        self._pressure = max(0.0, min(1.0, factor))
        self._dispatch()

    # -- acquiring and releasing --------------------------------------------------------------

    async def acquire(
        self,
        priority: Priority,
        *,
        deadline: float | None = None,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> Ticket:
        """A slot for one request, at once or after waiting; raises ``Shed`` when refused.

        ``deadline`` is on this controller's clock; ``is_cancelled`` says the client has gone.
        """
        if self._has_slot(priority) and not self._waiting_at_or_above(priority):
            now = self._clock()
            self._observe_delay(0.0, now)
            return self._start(priority, now)
        return await self._wait(priority, deadline, is_cancelled)

    async def _wait(
        self,
        priority: Priority,
        deadline: float | None,
        is_cancelled: Callable[[], bool] | None,
    ) -> Ticket:
        now = self._clock()
        if deadline is not None and deadline <= now:
            raise self._shed_error("deadline", priority)
        if self._queued >= self._queue_capacity:
            victim = self._newest_waiter_below(priority)
            if victim is None:
                raise self._shed_error("queue_full", priority)
            self._shed(victim, "queue_full")
        waiter = _Waiter(priority, now, deadline, is_cancelled)
        self._queues[priority].append(waiter)
        self._queued += 1
        try:
            return await waiter.future
        except asyncio.CancelledError:
            self._forget(waiter)
            raise

    def _forget(self, waiter: _Waiter) -> None:
        """Clean up after a waiter whose task was cancelled."""
        future = waiter.future
        if future.cancelled():
            with contextlib.suppress(ValueError):  # a dispatch may have dropped it already
                self._queues[waiter.priority].remove(waiter)
                self._queued -= 1
        elif future.exception() is None:
            future.result().abandon()

    def _start(self, priority: Priority, now: float) -> Ticket:
        self._inflight[priority] += 1
        self._total_inflight += 1
        return Ticket(self, priority, now, self._total_inflight)

    def _finish(self, ticket: Ticket, *, dropped: bool, sample: bool) -> None:
        self._inflight[ticket.priority] -= 1
        self._total_inflight -= 1
        if sample:
            rtt = self._clock() - ticket.started_at
            self._limit.on_sample(rtt, ticket.inflight_at_start, dropped)
        self._dispatch()

    def _has_slot(self, priority: Priority) -> bool:
        limit = self._limit.limit
        if priority is Priority.CRITICAL:
            return self._total_inflight < limit
        share = min(1.0 - self._critical_reserve, 1.0 - self._pressure / 2)
        # At least one slot, or a tiny fixed limit would starve the lower classes outright.
        return self._total_inflight < max(1, math.floor(limit * share))

    def _waiting_at_or_above(self, priority: Priority) -> bool:
        return any(self._queues[level] for level in range(priority + 1))

    def _dispatch(self) -> None:
        """Start as many waiters as the free slots allow, best first; shed stale ones."""
        if not self._queued:
            return
        for priority in Priority:
            queue = self._queues[priority]
            while queue:
                if not self._has_slot(priority):
                    # The lower classes have smaller shares, so they cannot start either.
                    return
                waiter = queue.pop() if self._standing else queue.popleft()
                self._queued -= 1
                if waiter.future.done():  # cancelled; its task will find it gone
                    continue
                now = self._clock()
                delay = now - waiter.enqueued_at
                self._observe_delay(delay, now)
                reason = self._drop_reason(waiter, now)
                if reason is not None:
                    self._shed(waiter, reason)
                    continue
                waiter.future.set_result(self._start(priority, now))
                if self._on_wait is not None:
                    self._on_wait(priority, delay)

    # -- shedding -----------------------------------------------------------------------------

    async def run_sweeper(self, period: float = 0.01) -> None:
        """Sweep every ``period`` seconds, forever; run it as a background task."""
        while True:
            await asyncio.sleep(period)
            self.sweep()

    def sweep(self) -> None:
        """Shed every waiter that is stale, past its deadline or without a client."""
        if not self._queued:
            return
        now = self._clock()
        for queue in self._queues:
            doomed = [(w, r) for w in queue if (r := self._drop_reason(w, now)) is not None]
            if not doomed:
                continue
            doomed_waiters = {waiter for waiter, _ in doomed}
            kept = [waiter for waiter in queue if waiter not in doomed_waiters]
            queue.clear()
            queue.extend(kept)
            self._queued -= len(doomed)
            for waiter, reason in doomed:
                self._shed(waiter, reason)
        self._dispatch()

    def _drop_reason(self, waiter: _Waiter, now: float) -> ShedReason | None:
        if waiter.is_cancelled is not None and waiter.is_cancelled():
            return "disconnected"
        if waiter.deadline is not None and waiter.deadline <= now:
            return "deadline"
        allowed = self._codel_target if self._standing else self._codel_interval
        if now - waiter.enqueued_at > allowed:
            return "codel"
        return None

    def _observe_delay(self, delay: float, now: float) -> None:
        if now >= self._interval_end:
            # A standing queue is one that never drained below the target for a whole interval.
            self._standing = (
                self._interval_min_delay is not None
                and self._interval_min_delay > self._codel_target
            )
            self._interval_end = now + self._codel_interval
            self._interval_min_delay = delay
        elif self._interval_min_delay is None or delay < self._interval_min_delay:
            self._interval_min_delay = delay

    def _newest_waiter_below(self, priority: Priority) -> _Waiter | None:
        """Take the newest live waiter of the lowest class below ``priority`` off its queue."""
        for level in reversed(range(priority + 1, len(Priority))):
            queue = self._queues[level]
            while queue:
                waiter = queue.pop()
                self._queued -= 1
                if not waiter.future.done():
                    return waiter
        return None

    def _shed(self, waiter: _Waiter, reason: ShedReason) -> None:
        """Refuse a waiter that is already off its queue (unless its task gave up first)."""
        if not waiter.future.done():
            waiter.future.set_exception(self._shed_error(reason, waiter.priority))

    def refuse(self, reason: ShedReason, priority: Priority) -> Shed:
        """Count a request refused before it asked for a slot, and return its ``Shed``."""
        return self._shed_error(reason, priority)

    def _shed_error(self, reason: ShedReason, priority: Priority) -> Shed:
        if self._on_shed is not None:
            self._on_shed(reason, priority)
        return Shed(reason=reason, priority=priority, retry_after=self._retry_after())

    def _retry_after(self) -> float:
        """1 s, up to 4 s as the queue fills or storage pressure builds."""
        fill = self._queued / self._queue_capacity if self._queue_capacity else 1.0
        load = max(min(fill, 1.0), self._pressure)
        return float(_RETRY_AFTER_BASE + math.floor(_RETRY_AFTER_EXTRA * load))
