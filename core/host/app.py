"""The application factory: settings in, a ready ``web.Application`` out."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from core import keys
from core.admission import keys as admission_keys
from core.admission.clients import client_addressing
from core.http import keys as http_keys
from core.http.cache import MicroCache
from core.http.compression import compression_middleware
from core.http.connections import (
    ConnectionGuard,
    ConnectionsPerAddress,
    guard_sweeper_ctx,
    on_response_prepare,
)
from core.http.cors import cors_middleware
from core.http.docs import routes as docs_routes
from core.http.fastlane import FastLane
from core.http.health import DependencyChecks
from core.http.lifecycle import Readiness, event_loop_lag_ctx
from core.http.middlewares import envelope_middleware, identity_middleware
from core.http.operations import operations_routes
from core.http.problem_pages import routes as problem_page_routes
from core.http.server_name import name_the_server
from core.identity import keys as identity_keys
from core.identity.tokens import TokenVerifier, token_keys
from core.observability import keys as observability_keys
from core.observability.metrics import Metrics
from core.observability.metrics_exposure import metrics_port_ctx
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.fanout import build_fanout, fanout_ctx
from core.plugin_host.idempotency import idempotency_ctx
from core.plugin_host.plugins import EventBus, PluginHost
from core.plugin_host.routing import RouteRegistry, endpoint
from core.settings import Settings
from core.storage import keys as storage_keys
from core.storage.opening import open_database
from core.storage.writer import Writer
from core.wire.bodies import BodyTimes

log = logging.getLogger("qatysu")


def create_app(settings: Settings, *, extra_plugins: Sequence[object] = ()) -> web.Application:
    """Build the application. Plugins are loaded and routes mounted here; I/O waits for startup."""
    host = PluginHost(settings, extra_plugins=extra_plugins)
    jurisdiction = host.jurisdiction()
    verifier = TokenVerifier(token_keys(settings), jurisdiction)

    metrics = Metrics(slo_seconds=settings.metrics.slo_seconds)
    # Outermost first, in the order they run (core/http/middlewares.py says why this order).
    middlewares: list[Middleware] = [envelope_middleware, identity_middleware]
    admission = None
    if settings.admission.enabled:
        from core.admission.middleware import admission_middleware, triage_middleware
        from core.admission.state import Admission

        admission = Admission(settings, metrics)
        middlewares = [
            envelope_middleware,
            triage_middleware,
            identity_middleware,
            admission_middleware,
        ]

    # CORS and compression wrap the envelope, so that error answers carry their headers too.
    if settings.server.compression:
        middlewares.insert(0, compression_middleware)
    if settings.server.cors_origins:
        middlewares.insert(0, cors_middleware)
    app = web.Application(middlewares=middlewares, client_max_size=settings.server.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[plugin_host_keys.PLUGINS] = host
    app[identity_keys.VERIFIER] = verifier
    app[observability_keys.METRICS] = metrics
    app[http_keys.CACHE] = MicroCache(
        ttl=settings.cache.ttl_seconds, max_entries=settings.cache.max_entries
    )
    app[identity_keys.JURISDICTION] = jurisdiction
    app[http_keys.READINESS] = Readiness()
    app[plugin_host_keys.EVENTS] = EventBus(host, app)
    app[plugin_host_keys.FANOUT] = build_fanout(settings, metrics)
    app[http_keys.OPENAPI_CACHE] = {}
    app[http_keys.DEPENDENCY_CHECKS] = DependencyChecks(
        app, migration_sets=host.migrations(), ttl=settings.server.readiness_cache_seconds
    )
    lane = None
    if admission is not None:
        app[admission_keys.ADMISSION] = admission
        if settings.admission.fast_lane:
            app[http_keys.FAST_LANE] = lane = FastLane(
                cache=app[http_keys.CACHE],
                metrics=metrics,
                limiter=admission.local_limiter,
                trusted=admission.trusted,
                access_log=logging.getLogger("qatysu.access")
                if settings.server.access_log
                else None,
            )
    app[http_keys.GUARD] = ConnectionGuard(
        # With admission off nothing is shed, connections included: the unprotected baseline.
        max_connections=settings.server.max_connections if admission is not None else sys.maxsize,
        # The head is part of the whole request, whose deadline is request_timeout.
        header_timeout=min(settings.server.header_timeout, settings.server.request_timeout),
        on_refused=_count_connection_refusal(app),
        lane=lane,
        body_times=BodyTimes.of(settings.server),
        per_address=_connections_per_address(settings) if admission is not None else None,
    )
    app.on_response_prepare.append(on_response_prepare)
    app.on_response_prepare.append(name_the_server)

    host.startup(app)
    routes = RouteRegistry()
    routes.include(operations_routes(settings.metrics.exposure))
    routes.include(docs_routes)
    routes.include(problem_page_routes)
    host.add_routes(routes, app)
    app[plugin_host_keys.ROUTES] = routes
    for spec in routes:
        handler = endpoint(spec, validate_responses=settings.server.validate_responses)
        if spec.method == "GET":
            # HEAD is answered by the same handler (aiohttp drops the body), as the fast lane
            # answers it; the route name, and so the admission policy, is shared.
            app.router.add_get(spec.path, handler, name=spec.name, allow_head=True)
        else:
            app.router.add_route(spec.method, spec.path, handler, name=spec.name)

    app.cleanup_ctx.append(storage_ctx)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(fanout_ctx)
    app.cleanup_ctx.append(idempotency_ctx)
    app.cleanup_ctx.append(event_loop_lag_ctx)
    if admission is not None:
        from core.host.admission_wiring import admission_ctx

        app.cleanup_ctx.append(admission_ctx)
    app.cleanup_ctx.append(guard_sweeper_ctx)
    if settings.metrics.exposure == "separate_port":
        app.cleanup_ctx.append(metrics_port_ctx)
    app.cleanup_ctx.extend(host.cleanup_contexts(app))
    app.cleanup_ctx.append(readiness_ctx)
    return app


def _connections_per_address(settings: Settings) -> ConnectionsPerAddress | None:
    cap = settings.server.max_connections_per_address
    return ConnectionsPerAddress(cap, client_addressing(settings.server)) if cap else None


def _count_connection_refusal(app: web.Application) -> Callable[[str], None]:
    rejected = app[observability_keys.METRICS].admission_rejected

    def count(reason: str) -> None:
        rejected.labels(reason, "none").inc()

    return count


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    database = await open_database(settings, app[plugin_host_keys.PLUGINS].migrations())
    app[storage_keys.DATABASE] = database
    writer = Writer(
        database,
        queue_size=settings.writer.queue_size,
        max_batch=settings.writer.max_batch,
        metrics=app[observability_keys.METRICS],
        commit_timeout=settings.writer.commit_timeout,
    )
    app[storage_keys.WRITER] = writer
    writer.start()
    yield
    await app[plugin_host_keys.EVENTS].drain()
    await writer.close()
    await database.dispose()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    if settings.redis.url is None:
        app[keys.REDIS] = None
        yield
        return
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # No retries: a dead Redis must fail fast so the rate limiter falls back to local limits.
    client = aioredis.Redis.from_url(
        settings.redis.url,
        socket_timeout=settings.redis.socket_timeout,
        socket_connect_timeout=settings.redis.socket_timeout,
        retry=Retry(NoBackoff(), 0),
    )
    app[keys.REDIS] = client
    yield
    await client.aclose()


async def readiness_ctx(app: web.Application) -> AsyncIterator[None]:
    readiness = app[http_keys.READINESS]
    readiness.started = True
    yield
    readiness.draining = True
