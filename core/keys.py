"""Every piece of shared app and request state, declared once as a typed key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from core.admission.state import Admission
    from core.agencies import AgencyRegister
    from core.http.cache import MicroCache
    from core.http.connections import ConnectionGuard
    from core.http.fastlane import FastLane
    from core.http.health import DependencyChecks
    from core.http.lifecycle import LoopLag, Readiness
    from core.identity.tokens import Identity, TokenVerifier
    from core.observability.metrics import Metrics
    from core.plugin_host.fanout import Fanout
    from core.plugin_host.idempotency import AnswerStore
    from core.plugin_host.plugins import EventBus, PluginHost
    from core.plugin_host.routing import RouteRegistry
    from core.settings import Settings
    from core.storage.database import Database
    from core.storage.writer import Writer
    from core.workdays import WorkCalendar

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
PLUGINS: web.AppKey[PluginHost] = web.AppKey("plugins")
ROUTES: web.AppKey[RouteRegistry] = web.AppKey("routes")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
METRICS_PORT: web.AppKey[int] = web.AppKey("metrics_port")
DATABASE: web.AppKey[Database] = web.AppKey("database")
WRITER: web.AppKey[Writer] = web.AppKey("writer")
CACHE: web.AppKey[MicroCache] = web.AppKey("cache")
EVENTS: web.AppKey[EventBus] = web.AppKey("events")
VERIFIER: web.AppKey[TokenVerifier] = web.AppKey("verifier")
CALENDAR: web.AppKey[WorkCalendar] = web.AppKey("calendar")
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
LOOP_LAG: web.AppKey[LoopLag] = web.AppKey("loop_lag")
REDIS: web.AppKey[aioredis.Redis | None] = web.AppKey("redis")
ADMISSION: web.AppKey[Admission] = web.AppKey("admission")
FAST_LANE: web.AppKey[FastLane] = web.AppKey("fast_lane")
AGENCIES: web.AppKey[AgencyRegister] = web.AppKey("agencies")
ANSWERS: web.AppKey[AnswerStore] = web.AppKey("idempotency_answers")
GUARD: web.AppKey[ConnectionGuard] = web.AppKey("connection_guard")
DEPENDENCY_CHECKS: web.AppKey[DependencyChecks] = web.AppKey("dependency_checks")
# Committed changes to every instance's listeners (``core.plugin_host.fanout``).
FANOUT: web.AppKey[Fanout] = web.AppKey("fanout")
# The API description, built on its first request: the routes do not change after start.
OPENAPI_CACHE: web.AppKey[dict[str, object]] = web.AppKey("openapi_cache")

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
# When the request's head arrived (``time.monotonic()``), stamped by the connection layer.
ARRIVAL: web.RequestKey[float] = web.RequestKey("arrival")
IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("identity")
# The request body, once read within its deadline (``core.wire.bodies.read_body``).
BODY: web.RequestKey[bytes] = web.RequestKey("body")
IDEMPOTENCY_SCOPE: web.RequestKey[str] = web.RequestKey("idempotency_scope")
