"""The request path's own middlewares: the envelope and identity.

``core.host.app`` lists the middlewares in the order they run, outermost first:

* with admission on: ``envelope_middleware``, admission's ``triage_middleware``,
  ``identity_middleware``, admission's ``admission_middleware``, then the handler;
* with admission off: ``envelope_middleware``, ``identity_middleware``, then the handler.

Identity runs after triage so that a request dropped for a departed client, a passed deadline
or saturated storage costs no token verification, and before the rate limit, which keys a
citizen by the verified token (``core.admission.middleware``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

from core.admission.auth_failures import charge_failed_authentication
from core.http import keys as http_keys
from core.http.requestids import request_id_for
from core.identity import keys as identity_keys
from core.identity.tokens import bearer_token
from core.observability import keys as observability_keys
from core.plugin_host import keys as plugin_host_keys
from core.storage.database import storage_failure
from core.wire import keys as wire_keys
from core.wire.bounds import REFUSED_CHARACTERS, refused_characters
from core.wire.errors import (
    Problem,
    ServiceUnavailable,
    Unauthorized,
    from_http_exception,
    internal_error_response,
)
from core.wire.i18n import negotiate

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

log = logging.getLogger("qatysu.request")


def route_label(request: web.Request) -> str:
    """The route template (never the raw path, which would explode label cardinality)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost layers in one frame: the request id, problem+json for every error, and
    the request metrics (which see each error's own status). One middleware instead of three
    saves two coroutine frames on every request, rejections included."""
    request_id = request_id_for(request.headers.get("X-Request-Id"))
    request[http_keys.REQUEST_ID] = request_id
    guard = request.app.get(http_keys.GUARD)
    arrival = guard.arrival(request.transport) if guard is not None else None
    request[wire_keys.ARRIVAL] = arrival if arrival is not None else time.monotonic()
    started = time.perf_counter()
    try:
        check_path_parameters(request)
        response = await handler(request)
    except Problem as problem:
        if isinstance(problem, ServiceUnavailable):
            request.app[observability_keys.METRICS].count_unavailable(problem.reason)
        response = problem.response(negotiate(request.headers.get("Accept-Language")))
    except web.HTTPException as exc:
        if exc.status < 400:
            _observe(request, exc.status, started)
            raise
        response = from_http_exception(exc, negotiate(request.headers.get("Accept-Language")))
    except Exception as exc:
        language = negotiate(request.headers.get("Accept-Language"))
        if storage_failure(exc):
            # A stalled or unreachable database is not a bug: say so, and briefly.
            log.warning(
                "storage failed in %s %s [request %s]: %s",
                request.method,
                route_label(request),
                request_id,
                type(exc).__name__,
            )
            request.app[observability_keys.METRICS].count_unavailable("storage_failed")
            response = ServiceUnavailable(
                "storage is not answering; try again shortly", reason="storage_failed"
            ).response(language)
        else:
            log.exception(
                "unhandled error in %s %s [request %s]",
                request.method,
                route_label(request),
                request_id,
            )
            response = internal_error_response(request_id, language)
    _observe(request, response.status, started)
    response.headers["X-Request-Id"] = request_id
    return response


def check_path_parameters(request: web.Request) -> None:
    """422 naming each path parameter that holds a character no database stores."""
    refused = [
        name
        for name, value in request.match_info.items()
        if not REFUSED_CHARACTERS.isdisjoint(value)
    ]
    if refused:
        raise refused_characters(refused)


def _observe(request: web.Request, status: int, started: float) -> None:
    request.app[observability_keys.METRICS].observe_request(
        route_label(request), request.method, status, time.perf_counter() - started
    )


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verify a bearer token when one is sent, into ``request[identity_keys.IDENTITY]`` (None
    without one). A bad token is 401, charged to the client's address
    (``core.admission.auth_failures``), on every route but one whose bearer token is not a JWT
    (``/metrics`` behind its own token)."""
    if not request.app[plugin_host_keys.ROUTES].has_own_token(request.match_info.route.name):
        try:
            token = bearer_token(request)
            identity = (
                None
                if token is None
                else await request.app[plugin_host_keys.PLUGINS].identify(request, token)
            )
        except Unauthorized:
            await charge_failed_authentication(request)
            raise
        if identity is not None:
            request.app[identity_keys.JURISDICTION].check_identity(identity)
        request[identity_keys.IDENTITY] = identity
    return await handler(request)
