"""Admission on the request path: rate-limit the client, then take a slot, wait, or be shed.

Order matters for cost. Operations routes bypass everything. A request whose client has gone,
or whose deadline (counted from its arrival, not from now) has passed, is dropped before any
work. A client over its rate gets 429 before any slot is considered. A write arriving while
storage is saturated is shed at once. Then the request takes a concurrency slot of its priority
class, or waits in the bounded queue, or is shed with 503, all before the handler does any
work. A write gives its slot back while it waits for the group commit (``core.admission.slots``).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING

from aiohttp import web

from core import keys
from core.admission.clients import client_key
from core.admission.controller import Shed
from core.admission.gcra import ratelimit_headers
from core.admission.priority import Priority
from core.admission.slots import holding
from core.errors import ServiceUnavailable, TooManyRequests
from core.middlewares import resolve_identity

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

    from core.routing import RoutePolicy

MAX_REQUEST_TIMEOUT = 60.0
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def request_deadline(request: web.Request, policy: RoutePolicy, default: float) -> float:
    """When the request stops being worth starting: its arrival plus its Request-Timeout, or
    plus the route's deadline."""
    budget = policy.deadline or default
    header = request.headers.get("Request-Timeout")
    if header is not None:
        with contextlib.suppress(ValueError):
            asked = float(header)
            if asked > 0 and math.isfinite(asked):
                budget = min(asked, MAX_REQUEST_TIMEOUT)
    return request[keys.ARRIVAL] + budget


@web.middleware
async def admission_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    app = request.app
    admission = app[keys.ADMISSION]
    policy = admission.policy(app, request.match_info.route.name)
    if policy.bypass:
        return await handler(request)

    now = time.monotonic()
    admission.sojourn.add(now - request[keys.ARRIVAL])
    priority = policy.priority
    transport = request.transport
    deadline = request_deadline(request, policy, admission.settings.default_deadline)
    if transport is None or transport.is_closing():
        raise _shed(admission.controller.refuse("disconnected", priority))
    if deadline <= now:
        raise _shed(admission.controller.refuse("deadline", priority))

    rate_headers: dict[str, str] | None = None
    if policy.rate is not None and admission.settings.ratelimit_enabled:
        await resolve_identity(request)
        key = client_key(request, request.get(keys.IDENTITY), admission.trusted)
        decision = await admission.limiter.check(f"{policy.rate.name}:{key}", policy.rate)
        rate_headers = ratelimit_headers(policy.rate, decision)
        if not decision.allowed:
            app[keys.METRICS].ratelimit_limited.labels(policy.rate.name).inc()
            raise TooManyRequests(
                "over the rate of {policy}; retry after {seconds} s",
                headers=rate_headers,
                params={
                    "policy": policy.rate.name,
                    "seconds": rate_headers.get("Retry-After", "1"),
                },
            )

    if (
        priority is Priority.CRITICAL
        and request.method not in _READ_METHODS
        and admission.writer_pressure >= 1.0
    ):
        app[keys.METRICS].admission_rejected.labels("writer_pressure", "critical").inc()
        raise ServiceUnavailable(
            "storage is saturated; try again shortly", retry_after=1, reason="writer_pressure"
        )

    try:
        ticket = await admission.controller.acquire(
            priority,
            deadline=deadline,
            is_cancelled=lambda: transport.is_closing(),
        )
    except Shed as shed:
        raise _shed(shed) from None

    dropped = True
    try:
        with holding(ticket):
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


def _shed(shed: Shed) -> ServiceUnavailable:
    return ServiceUnavailable(
        "the server is overloaded ({reason}); try again shortly",
        retry_after=shed.retry_after,
        reason=shed.reason,
        params={"reason": shed.reason},
    )
