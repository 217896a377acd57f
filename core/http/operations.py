"""Operations routes: liveness, readiness, metrics and the API description; no admission."""

from __future__ import annotations

from functools import partial
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from core.http import keys as http_keys
from core.http.health import OK, Check
from core.http.openapi import build_openapi
from core.identity import keys as identity_keys
from core.observability import keys as observability_keys
from core.observability.metrics_exposure import guarded_metrics_handler, metrics_handler
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.routing import OPERATIONS, Routes
from core.storage import keys as storage_keys
from core.wire.bodies import json_response


def package_version() -> str:
    try:
        return version("qatysu")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when this instance can serve, even degraded (``core.http.health`` says what that is);
    503 naming each check that stops it. Draining is seen at once: only the dependencies'
    answers are kept for a moment."""
    app = request.app
    checks = {"server": _server_check(app), "writer": _writer_check(app)}
    checks.update(await app[http_keys.DEPENDENCY_CHECKS].results())
    states = {check.state for check in checks.values()}
    status = "not ready" if "failing" in states else "degraded" if "degraded" in states else "ready"
    ready = status != "not ready"
    app[observability_keys.METRICS].ready.set(1 if ready else 0)
    return json_response(
        {"status": status, "checks": {name: check.detail for name, check in checks.items()}},
        status=200 if ready else 503,
        headers=None if ready else {"Retry-After": "1"},
    )


def _server_check(app: web.Application) -> Check:
    readiness = app[http_keys.READINESS]
    if readiness.draining:
        return Check("failing", "draining")
    if not readiness.started:
        return Check("failing", "starting")
    return OK


def _writer_check(app: web.Application) -> Check:
    writer = app.get(storage_keys.WRITER)
    return OK if writer is not None and writer.alive else Check("failing", "down")


async def openapi(request: web.Request) -> web.Response:
    cache = request.app[http_keys.OPENAPI_CACHE]
    if "document" not in cache:
        cache["document"] = build_openapi(
            request.app[plugin_host_keys.ROUTES],
            version=package_version(),
            agency_codes=list(request.app[identity_keys.JURISDICTION].addressee_codes()),
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
        summary="The server can serve: started, not draining, its database answering and migrated",
        responses={
            200: "Ready, or degraded (Redis down while its users fail open): the body says which",
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
