"""The HTTP layer's shared app and request state: the connection guard, the fast lane, the
micro-cache, readiness and the loop-lag probe, and each request's id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from core.http.cache import MicroCache
    from core.http.connections import ConnectionGuard
    from core.http.fastlane import FastLane
    from core.http.health import DependencyChecks
    from core.http.lifecycle import LoopLag, Readiness

CACHE: web.AppKey[MicroCache] = web.AppKey("cache")
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
LOOP_LAG: web.AppKey[LoopLag] = web.AppKey("loop_lag")
FAST_LANE: web.AppKey[FastLane] = web.AppKey("fast_lane")
GUARD: web.AppKey[ConnectionGuard] = web.AppKey("connection_guard")
DEPENDENCY_CHECKS: web.AppKey[DependencyChecks] = web.AppKey("dependency_checks")
# The API description, built on its first request: the routes do not change after start.
OPENAPI_CACHE: web.AppKey[dict[str, object]] = web.AppKey("openapi_cache")

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
