"""Admission on the request path: rate-limit the client, then take a slot, wait, or be shed.

Order matters for cost. Operations routes bypass everything. A client over its rate gets 429
before any slot is considered. A write arriving while storage is saturated is shed at once.
Then the request takes a concurrency slot of its priority class, or waits in the bounded
queue, or is shed with 503 — all before the handler does any work.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from core import keys
from core.admission.clients import client_key, parse_networks
from core.admission.concurrency import FixedLimit, Gradient2Limit, LimitAlgorithm
from core.admission.controller import AdmissionController, Shed
from core.admission.edge import EdgeShedder
from core.admission.gcra import LocalRateLimiter, RateLimiter, ratelimit_headers
from core.admission.priority import Priority, RatePolicy
from core.admission.ratelimit_redis import FallbackRateLimiter, RedisRateLimiter
from core.background import stop
from core.connections import GUARD
from core.errors import ServiceUnavailable, TooManyRequests
from core.middlewares import resolve_identity
from core.routing import RoutePolicy

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

    from core.metrics import Metrics
    from core.settings import Settings

# Requests that match no route still cost a little; they are limited like anonymous lists.
UNMATCHED = RoutePolicy(
    priority=Priority.SHEDDABLE, rate=RatePolicy(name="unmatched", rate=20.0, burst=40)
)
MAX_REQUEST_TIMEOUT = 60.0
_TICK = 0.02
_LAG_SMOOTHING = 0.1
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Admission:
    """One app's admission state: limits, the controller and the rate limiter."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings.admission
        self.metrics = metrics
        self.sheds = 0
        self.trusted = parse_networks(settings.server.trusted_proxies)
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
        self.limiter: RateLimiter = LocalRateLimiter()
        self._policies: dict[str | None, RoutePolicy] = {}
        self.writer_pressure = 0.0
        self.edge: EdgeShedder | None = None

    def _count_shed(self, reason: str, priority: Priority) -> None:
        self.sheds += 1
        self.metrics.admission_rejected.labels(reason, priority.name.lower()).inc()

    def rate_for(self, policy: RatePolicy) -> RatePolicy:
        override = self.settings.rate_overrides.get(policy.name)
        if override is None:
            return policy
        return RatePolicy(name=policy.name, rate=override.rate, burst=override.burst)

    def policy(self, app: web.Application, route_name: str | None) -> RoutePolicy:
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
        controller = self.controller
        redis = app[keys.REDIS]
        if redis is not None:
            self.limiter = FallbackRateLimiter(
                primary=RedisRateLimiter(redis, key_prefix=app[keys.SETTINGS].redis.key_prefix),
                fallback=LocalRateLimiter(),
                on_backend_error=metrics.ratelimit_backend_errors.inc,
                fail_open=self.settings.ratelimit_fail_open,
            )
        if self.settings.edge_shedding:
            routes = app[keys.ROUTES]
            self.edge = EdgeShedder(routes)
            guard = app[GUARD]
            guard.edge = self.edge
            edge_rejected = {
                p: metrics.admission_rejected.labels("edge", p.name.lower()) for p in Priority
            }
            guard.on_edge_shed = lambda priority: edge_rejected[priority].inc()
        tasks = [
            asyncio.create_task(controller.run_sweeper(), name="qatysu-admission-sweeper"),
            asyncio.create_task(self._observe(app), name="qatysu-admission-observer"),
        ]
        yield
        await stop(*tasks)

    async def _observe(self, app: web.Application) -> None:
        """Every tick: measure event-loop lag, feed storage pressure and overload into
        admission and the edge, and (every fifth tick) publish the gauges."""
        metrics = app[keys.METRICS]
        writer = app[keys.WRITER]
        labels = {p: metrics.admission_inflight.labels(p.name.lower()) for p in Priority}
        tick = 0
        smoothed_lag = 0.0
        sheds_seen = 0
        while True:
            expected = time.monotonic() + _TICK
            await asyncio.sleep(_TICK)
            lag = max(0.0, time.monotonic() - expected)
            # One long loop iteration is a burst being absorbed; a lag that persists over
            # several ticks is a loop that cannot keep up.
            smoothed_lag += _LAG_SMOOTHING * (lag - smoothed_lag)
            self.writer_pressure = writer.pressure
            self.controller.set_pressure(
                min(1.0, self.writer_pressure / self.settings.writer_pressure_high)
            )
            if self.edge is not None:
                # Requests the controller shed since the last tick were parsed and routed for
                # nothing: refusing that share at the edge instead is cheaper.
                shed_since = self.sheds - sheds_seen
                sheds_seen = self.sheds
                self.edge.update(
                    overloaded=smoothed_lag > self.settings.edge_lag_target or shed_since > 0,
                    ticks=(_TICK + lag) / _TICK,
                )
            tick += 1
            if tick % 5 == 0:
                for priority, gauge in labels.items():
                    gauge.set(self.controller.inflight(priority))
                metrics.admission_limit.set(self.controller.current_limit)
                metrics.admission_queue_length.set(self.controller.queue_length())
                metrics.writer_queue_length.set(writer.queue_length)


def request_deadline(request: web.Request, policy: RoutePolicy, default: float) -> float:
    """When the request stops being worth starting: its Request-Timeout, or the route's."""
    budget = policy.deadline or default
    header = request.headers.get("Request-Timeout")
    if header is not None:
        with contextlib.suppress(ValueError):
            asked = float(header)
            if asked > 0 and math.isfinite(asked):
                budget = min(asked, MAX_REQUEST_TIMEOUT)
    return time.monotonic() + budget


@web.middleware
async def admission_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    admission = request.app[keys.ADMISSION]
    policy = admission.policy(request.app, request.match_info.route.name)
    if policy.bypass:
        return await handler(request)

    rate_headers: dict[str, str] | None = None
    if policy.rate is not None and admission.settings.ratelimit_enabled:
        await resolve_identity(request)
        key = client_key(request, request.get(keys.IDENTITY), admission.trusted)
        decision = await admission.limiter.check(f"{policy.rate.name}:{key}", policy.rate)
        rate_headers = ratelimit_headers(policy.rate, decision)
        if not decision.allowed:
            request.app[keys.METRICS].ratelimit_limited.labels(policy.rate.name).inc()
            raise TooManyRequests(
                f"over the rate of {policy.rate.name}; retry after "
                f"{rate_headers.get('Retry-After', '1')} s",
                headers=rate_headers,
            )

    priority = policy.priority
    if (
        priority is Priority.CRITICAL
        and request.method not in _READ_METHODS
        and admission.writer_pressure >= 1.0
    ):
        request.app[keys.METRICS].admission_rejected.labels("writer_pressure", "critical").inc()
        raise ServiceUnavailable(
            "storage is saturated; try again shortly", retry_after=1, reason="writer_pressure"
        )

    transport = request.transport
    try:
        ticket = await admission.controller.acquire(
            priority,
            deadline=request_deadline(request, policy, admission.settings.default_deadline),
            is_cancelled=lambda: transport is None or transport.is_closing(),
        )
    except Shed as shed:
        raise ServiceUnavailable(
            f"the server is overloaded ({shed.reason}); try again shortly",
            retry_after=shed.retry_after,
            reason=shed.reason,
        ) from None

    dropped = True
    try:
        response = await handler(request)
        dropped = response.status >= 500
    except web.HTTPException as exc:
        dropped = exc.status >= 500
        raise
    except Exception as exc:
        status = getattr(exc, "status", 500)
        dropped = not isinstance(status, int) or status >= 500
        raise
    finally:
        ticket.release(dropped=dropped)
    if rate_headers is not None:
        response.headers.update(rate_headers)
    return response
