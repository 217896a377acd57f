"""CORS for the web front ends of ``server.cors_origins``: preflights answered, headers exposed.

A portal's front end usually lives on another origin than its API. Only the origins an operator
lists are allowed (none by default), each exactly as a browser sends it
(``https://portal.example.kz``). Tokens travel in ``Authorization``, never in cookies, so
credentials are not allowed and ``*`` is not needed.

The middleware is outermost, so an error answer carries the headers too (a front end can read
its problem+json), and a preflight costs neither admission nor a token check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from core import keys

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

# What a front end may read from an answer beyond the CORS-safelisted headers.
EXPOSED_HEADERS = ", ".join(
    (
        "RateLimit",
        "RateLimit-Policy",
        "Retry-After",
        "ETag",
        "Location",
        "Link",
        "Content-Language",
        "X-Request-Id",
    )
)
# What the API reads from a request beyond the CORS-safelisted headers.
ALLOWED_HEADERS = ", ".join(
    (
        "Authorization",
        "Content-Type",
        "Idempotency-Key",
        "If-None-Match",
        "Accept-Language",
        "Request-Timeout",
        "X-Request-Id",
    )
)
PREFLIGHT_MAX_AGE = "600"


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer the preflight of an allowed origin; mark every answer to one as readable by it."""
    origin = request.headers.get("Origin")
    if origin is None or origin not in request.app[keys.SETTINGS].server.cors_origins:
        return await handler(request)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        methods = _allowed_methods(request)
        if methods is not None:
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": ", ".join(sorted(methods)),
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                    "Vary": "Origin",
                },
            )
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        # A 304 or a redirect leaves the envelope as an exception; it is an answer all the same.
        _allow(exc, origin)
        raise
    _allow(response, origin)
    return response


def _allowed_methods(request: web.Request) -> set[str] | None:
    """The methods of the path the preflight asks about; None when no route has that path."""
    exception = request.match_info.http_exception
    if isinstance(exception, web.HTTPMethodNotAllowed):
        return set(exception.allowed_methods)
    return None


def _allow(response: web.StreamResponse, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    response.headers.add("Vary", "Origin")
