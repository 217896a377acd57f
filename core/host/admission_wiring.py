"""Admission's connections for the app's lifetime: the shared rate limiter (Redis, when
configured) and the fast lane's leases of it, the edge in the connection guard, the queue
sweeper, and the observer on the loop-lag probe.

Runs after ``redis_ctx`` (it needs ``app[keys.REDIS]``) and ``event_loop_lag_ctx`` (it reads
``app[http_keys.LOOP_LAG]``) in ``app.cleanup_ctx``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from core import keys
from core.admission import keys as admission_keys
from core.admission.edge import EdgeShedder
from core.admission.leases import LeasedBudget
from core.admission.observer import Observer
from core.admission.ratelimit_redis import FallbackRateLimiter, RedisRateLimiter
from core.background import stop
from core.http import keys as http_keys
from core.observability import keys as observability_keys
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.priority import Priority
from core.storage import keys as storage_keys

if TYPE_CHECKING:
    from core.admission.state import Admission
    from core.observability.metrics import Metrics


def kernel_wait_recorder(admission: Admission, metrics: Metrics) -> Callable[[float], None]:
    """What to do with each accepted connection's kernel wait: feed PIE's meter and the
    standing-wait test, and count it."""
    mean, standing = admission.kernel_wait, admission.kernel_standing
    observe = metrics.admission_kernel_age.observe

    def record(seconds: float) -> None:
        mean.add(seconds)
        standing.add(seconds)
        observe(seconds)

    return record


async def admission_ctx(app: web.Application) -> AsyncIterator[None]:
    admission = app[admission_keys.ADMISSION]
    settings = admission.settings
    metrics = app[observability_keys.METRICS]
    redis = app[keys.REDIS]
    tasks: list[asyncio.Task[None]] = []
    if redis is not None:
        shared = RedisRateLimiter(redis, key_prefix=app[keys.SETTINGS].redis.key_prefix)
        admission.limiter = limiter = FallbackRateLimiter(
            primary=shared,
            fallback=admission.local_limiter,
            on_backend_error=metrics.ratelimit_backend_errors.inc,
            fail_open=settings.ratelimit_fail_open,
        )
        if http_keys.FAST_LANE in app:
            leases = LeasedBudget(source=shared, gate=limiter, fallback=admission.local_limiter)
            app[http_keys.FAST_LANE].use_limiter(leases)
            tasks.append(asyncio.create_task(leases.run_top_ups(), name="qatysu-lane-leases"))
    if settings.edge_shedding:
        edge_rejected = {
            p: metrics.admission_rejected.labels("edge", p.name.lower()) for p in Priority
        }
        aged_rejected = {
            p: metrics.admission_rejected.labels("kernel_age", p.name.lower()) for p in Priority
        }
        routes = app[plugin_host_keys.ROUTES]
        admission.edge = EdgeShedder(
            routes,
            on_refused=lambda priority: edge_rejected[priority].inc(),
            age_target=settings.kernel_age_target,
            critical_age=settings.kernel_age_critical,
            on_aged=lambda priority: aged_rejected[priority].inc(),
        )
        app[http_keys.GUARD].attach_edge(admission.edge)
    kernel = app[http_keys.GUARD].kernel
    kernel.on_wait = kernel_wait_recorder(admission, metrics)
    probe = app[http_keys.LOOP_LAG]
    observer = Observer(
        admission, writer=app[storage_keys.WRITER], metrics=metrics, tick=probe.tick, kernel=kernel
    )
    probe.subscribe(observer.tick)
    tasks.append(
        asyncio.create_task(admission.controller.run_sweeper(), name="qatysu-admission-sweeper")
    )
    yield
    kernel.on_wait = None
    probe.unsubscribe(observer.tick)
    await stop(*tasks)
