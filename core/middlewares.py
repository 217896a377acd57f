"""The request path's outer layers, listed outermost first in ``core.app``."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import TYPE_CHECKING

from aiohttp import web

from core import keys
from core.errors import Problem, from_http_exception, internal_error_response
from core.identity import bearer_token

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

log = logging.getLogger("qatysu.request")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_id_prefix = os.urandom(4).hex()
_id_counter = itertools.count(1)


def route_label(request: web.Request) -> str:
    """The route template (never the raw path, which would explode label cardinality)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id")
    request_id = (
        incoming
        if incoming is not None and _SAFE_REQUEST_ID.match(incoming)
        else f"{_id_prefix}-{next(_id_counter)}"
    )
    request[keys.REQUEST_ID] = request_id
    response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return from_http_exception(exc)
    except Exception:
        request_id = request.get(keys.REQUEST_ID, "-")
        log.exception(
            "unhandled error in %s %s [request %s]",
            request.method,
            route_label(request),
            request_id,
        )
        return internal_error_response(request_id)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[keys.METRICS]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except Problem as problem:
        status = problem.status
        raise
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.observe_request(
            route_label(request), request.method, status, time.perf_counter() - started
        )


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verify a bearer token when one is sent; a bad token is 401 on every route."""
    await resolve_identity(request)
    return await handler(request)


async def resolve_identity(request: web.Request) -> None:
    if keys.IDENTITY in request:
        return
    token = bearer_token(request)
    request[keys.IDENTITY] = (
        None if token is None else await request.app[keys.PLUGINS].identify(request, token)
    )
