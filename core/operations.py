"""Operations routes: liveness, readiness, metrics and the API description; no admission."""

from __future__ import annotations

import asyncio
from functools import partial
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from core import keys
from core.bodies import json_response
from core.metrics import metrics_handler
from core.metrics_exposure import guarded_metrics_handler
from core.openapi import build_openapi
from core.routing import OPERATIONS, Routes


def package_version() -> str:
    try:
        return version("qatysu")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    checks: dict[str, str] = {}
    readiness = app[keys.READINESS]
    if readiness.draining:
        checks["server"] = "draining"
    elif not readiness.started:
        checks["server"] = "starting"
    else:
        checks["server"] = "ok"
    writer = app.get(keys.WRITER)
    checks["writer"] = "ok" if writer is not None and writer.alive else "down"
    try:
        async with asyncio.timeout(1.0):
            await app[keys.DATABASE].ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    redis = app[keys.REDIS]
    if redis is not None:
        try:
            async with asyncio.timeout(1.0):
                await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
        headers=None if ready else {"Retry-After": "1"},
    )


async def openapi(request: web.Request) -> web.Response:
    cache = request.app[keys.OPENAPI_CACHE]
    if "document" not in cache:
        cache["document"] = build_openapi(
            request.app[keys.ROUTES],
            version=package_version(),
            agency_codes=request.app[keys.AGENCIES].codes(),
        )
    return json_response(cache["document"])


def operations_routes(metrics_exposure: str = "same_port") -> Routes:
    """The operations routes; ``/metrics`` only where ``metrics.exposure`` puts it."""
    routes = Routes(tags=("operations",))
    declare = partial(routes.get, policy=OPERATIONS)
    declare(
        "/healthz",
        name="ops.healthz",
        summary="The process is alive",
        responses={200: "The process is alive"},
    )(healthz)
    declare(
        "/readyz",
        name="ops.readyz",
        summary="The database and Redis answer, and the server is not draining",
        responses={
            200: "The database and Redis answer, and the server is not draining",
            503: "Not ready: the body names each check that failed",
        },
    )(readyz)
    declare(
        "/openapi.json",
        name="ops.openapi",
        summary="This API description",
        responses={200: "This API description"},
    )(openapi)
    if metrics_exposure == "same_port":
        declare(
            "/metrics",
            name="ops.metrics",
            summary="Prometheus metrics",
            responses={200: "Prometheus metrics"},
        )(metrics_handler)
    elif metrics_exposure == "bearer_token":
        declare(
            "/metrics",
            name="ops.metrics",
            summary="Prometheus metrics, for the metrics bearer token",
            responses={
                200: "Prometheus metrics, for the metrics bearer token",
                401: "Without the metrics bearer token",
            },
            own_token=True,
        )(guarded_metrics_handler)
    return routes
