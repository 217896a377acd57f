"""One app's admission state: limits, the controller, the rate limiter and the delay signal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from core import keys
from core.admission.clients import client_addressing
from core.admission.concurrency import FixedLimit, Gradient2Limit, LimitAlgorithm
from core.admission.controller import AdmissionController
from core.admission.edge import EdgeShedder
from core.admission.gcra import LocalRateLimiter, RateLimiter
from core.admission.observer import observe
from core.admission.pie import PieController
from core.admission.priority import Priority, RatePolicy
from core.admission.ratelimit_redis import FallbackRateLimiter, RedisRateLimiter
from core.background import stop
from core.connections import GUARD
from core.routing import RoutePolicy

if TYPE_CHECKING:
    from core.metrics import Metrics
    from core.settings import Settings

# Requests that match no route still cost a little; they are limited like anonymous lists.
UNMATCHED = RoutePolicy(
    priority=Priority.SHEDDABLE, rate=RatePolicy(name="unmatched", rate=20.0, burst=40)
)


class SojournMeter:
    """Sojourn times (admission minus arrival) of the requests admitted since the last read.

    A tick in which no request reached admission says nothing about the queue, so the last
    mean holds for up to ``hold`` seconds: read as zero, a gap between two slow requests would
    look like the delay vanishing and back, and PIE's trend term would swing with it.
    """

    __slots__ = ("_count", "_held_until", "_hold", "_last", "_total")

    def __init__(self, *, hold: float = 1.0) -> None:
        self._total = 0.0
        self._count = 0
        self._hold = hold
        self._last = 0.0
        self._held_until = 0.0

    def add(self, seconds: float) -> None:
        self._total += seconds
        self._count += 1

    def take_mean(self, now: float) -> float:
        """The mean since the last call (the previous one while held, else 0.0 when nothing
        arrived), and start over."""
        if self._count:
            self._last = self._total / self._count
            self._held_until = now + self._hold
            self._total, self._count = 0.0, 0
        elif now >= self._held_until:
            self._last = 0.0
        return self._last


class Admission:
    """Limits, the controller, the rate limiter, and the drop probability the edge applies."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings.admission
        self.metrics = metrics
        self.trusted = client_addressing(settings.server)
        limit: LimitAlgorithm
        if self.settings.fixed_limit is not None:
            limit = FixedLimit(limit=self.settings.fixed_limit)
        else:
            limit = Gradient2Limit(
                initial_limit=self.settings.initial_limit,
                min_limit=self.settings.min_limit,
                max_limit=self.settings.max_limit,
            )
        self.controller = AdmissionController(
            limit=limit,
            queue_capacity=self.settings.queue_capacity,
            critical_reserve=self.settings.critical_reserve,
            codel_target=self.settings.codel_target,
            codel_interval=self.settings.codel_interval,
            on_shed=self._count_shed,
            on_wait=lambda priority, waited: metrics.admission_queue_wait.labels(
                priority.name.lower()
            ).observe(waited),
        )
        # The local limiter answers alone without Redis, and behind it (and for the fast lane,
        # which cannot wait for a round trip) with Redis.
        self.local_limiter = LocalRateLimiter()
        self.limiter: RateLimiter = self.local_limiter
        self.sojourn = SojournMeter()
        self.pie = PieController(target=self.settings.sojourn_target)
        self.writer_pressure = 0.0
        self.edge: EdgeShedder | None = None
        self._policies: dict[str | None, RoutePolicy] = {}

    def _count_shed(self, reason: str, priority: Priority) -> None:
        self.metrics.admission_rejected.labels(reason, priority.name.lower()).inc()

    def rate_for(self, policy: RatePolicy) -> RatePolicy:
        override = self.settings.rate_overrides.get(policy.name)
        if override is None:
            return policy
        return RatePolicy(name=policy.name, rate=override.rate, burst=override.burst)

    def policy(self, app: web.Application, route_name: str | None) -> RoutePolicy:
        """The route's declared policy with the operator's rate overrides applied, cached."""
        cached = self._policies.get(route_name)
        if cached is None:
            declared = app[keys.ROUTES].policy(route_name) or UNMATCHED
            rate = self.rate_for(declared.rate) if declared.rate is not None else None
            cached = RoutePolicy(
                priority=declared.priority,
                rate=rate,
                deadline=declared.deadline,
                bypass=declared.bypass,
            )
            self._policies[route_name] = cached
        return cached

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        metrics = self.metrics
        redis = app[keys.REDIS]
        if redis is not None:
            self.limiter = FallbackRateLimiter(
                primary=RedisRateLimiter(redis, key_prefix=app[keys.SETTINGS].redis.key_prefix),
                fallback=self.local_limiter,
                on_backend_error=metrics.ratelimit_backend_errors.inc,
                fail_open=self.settings.ratelimit_fail_open,
            )
        if self.settings.edge_shedding:
            routes = app[keys.ROUTES]
            self.edge = EdgeShedder(routes)
            edge_rejected = {
                p: metrics.admission_rejected.labels("edge", p.name.lower()) for p in Priority
            }
            app[GUARD].attach_edge(self.edge, lambda priority: edge_rejected[priority].inc())
        tasks = [
            asyncio.create_task(self.controller.run_sweeper(), name="qatysu-admission-sweeper"),
            asyncio.create_task(observe(self, app), name="qatysu-admission-observer"),
        ]
        yield
        await stop(*tasks)
