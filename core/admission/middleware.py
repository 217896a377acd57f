"""Admission on the request path: two middlewares, either side of identity.

``core.host.app`` runs, outermost first: the envelope, ``triage_middleware``, identity
(``core.http.middlewares``), ``admission_middleware``, the handler. Each refusal comes before the
work it would waste. The edge (``core.admission.edge``) has already refused a share of bodiless
reads before aiohttp parsed them.

``triage_middleware`` refuses what can be known without a verified token. Operations routes
bypass both middlewares. A request whose client has gone, or whose deadline (counted from its
arrival, not from now) has passed, is dropped; so is a write arriving while storage is
saturated. None of them pays for a token verification or a rate-limit round trip.

Identity then verifies the bearer token, because the rate limit keys a citizen by it.

``admission_middleware`` answers 429 to a client over its rate before any slot is considered,
and 429 to one with too many requests in progress (``core.admission.inflight``). A route that
declares a body has it read next, within its deadline (``core.wire.bodies``), so a slow body never
holds a slot. Then the request takes a concurrency slot of its priority class, or waits in the
bounded queue, or is shed with 503, all before the handler does any work. A write gives its
slot back while it waits for the group commit (``core.storage.slots``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from core.admission import keys as admission_keys
from core.admission.clients import client_address, client_key, holder_key
from core.admission.concurrency import failure_outcome, outcome, settle
from core.admission.controller import Shed
from core.admission.deadlines import request_deadline
from core.admission.gcra import ratelimit_headers
from core.admission.inflight import TooManyInFlight
from core.identity import keys as identity_keys
from core.observability import keys as observability_keys
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.priority import Priority
from core.plugin_host.routing import RoutePolicy
from core.storage.slots import holding
from core.wire import keys as wire_keys
from core.wire.bodies import read_body
from core.wire.errors import ServiceUnavailable, TooManyRequests

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

    from core.admission.inflight import Seat
    from core.admission.state import Admission

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What triage found, for admission_middleware: the route's policy and the request's deadline.
_POLICY: web.RequestKey[RoutePolicy] = web.RequestKey("admission_policy")
_DEADLINE: web.RequestKey[float] = web.RequestKey("admission_deadline")


@web.middleware
async def triage_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Classify the route; drop the request if its client left, its deadline passed, or it is
    a write while storage is saturated."""
    app = request.app
    admission = app[admission_keys.ADMISSION]
    policy = request[_POLICY] = admission.policy(app, request.match_info.route.name)
    if policy.bypass:
        return await handler(request)

    now = time.monotonic()
    admission.sojourn.add(now - request[wire_keys.ARRIVAL])
    priority = policy.priority
    transport = request.transport
    deadline = request[_DEADLINE] = request_deadline(
        request, policy, admission.settings.default_deadline
    )
    if transport is None or transport.is_closing():
        raise _shed(admission.controller.refuse("disconnected", priority))
    if deadline <= now:
        raise _shed(admission.controller.refuse("deadline", priority))
    if (
        priority is Priority.CRITICAL
        and request.method not in _READ_METHODS
        and admission.writer_pressure >= 1.0
    ):
        app[observability_keys.METRICS].admission_rejected.labels(
            "writer_pressure", "critical"
        ).inc()
        raise ServiceUnavailable(
            "storage is saturated; try again shortly", retry_after=1, reason="writer_pressure"
        )
    return await handler(request)


@web.middleware
async def admission_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Rate-limit the client, then hold a concurrency slot while the handler runs."""
    policy = request[_POLICY]
    if policy.bypass:
        return await handler(request)
    app = request.app
    admission = app[admission_keys.ADMISSION]

    rate_headers: dict[str, str] | None = None
    if policy.rate is not None and admission.settings.ratelimit_enabled:
        key = client_key(request, request.get(identity_keys.IDENTITY), admission.trusted)
        decision = await admission.limiter.check(f"{policy.rate.name}:{key}", policy.rate)
        rate_headers = ratelimit_headers(policy.rate, decision)
        if not decision.allowed:
            app[observability_keys.METRICS].ratelimit_limited.labels(policy.rate.name).inc()
            raise TooManyRequests(
                "over the rate of {policy}; retry after {seconds} s",
                headers=rate_headers,
                params={
                    "policy": policy.rate.name,
                    "seconds": rate_headers.get("Retry-After", "1"),
                },
            )

    if policy.stream:
        # A stream holds nothing of admission's while it lasts; its handler caps streams.
        response = await handler(request)
        if rate_headers is not None and not response.prepared:
            response.headers.update(rate_headers)
        return response

    seat = _seat(request, admission, policy.priority)
    try:
        if app[plugin_host_keys.ROUTES].reads_body(request.match_info.route.name):
            # The body is read before a slot is taken: a client that trickles it holds no slot
            # meanwhile, and is cut at its deadline (``core.wire.bodies``).
            started = time.monotonic()
            await read_body(request)
            # The body's time is the client's: the deadline bounds the server's own waits.
            request[_DEADLINE] += time.monotonic() - started
        transport = request.transport
        if transport is None:  # the client left while its token was verified or body read
            raise _shed(admission.controller.refuse("disconnected", policy.priority))
        try:
            ticket = await admission.controller.acquire(
                policy.priority,
                deadline=request[_DEADLINE],
                is_cancelled=lambda: transport.is_closing(),
            )
        except Shed as shed:
            raise _shed(shed) from None
    except BaseException:
        seat.release()
        raise

    try:
        with holding(ticket):
            response = await handler(request)
    except BaseException as exc:
        settle(ticket, failure_outcome(exc))
        raise
    finally:
        seat.release()
    settle(ticket, outcome(response.status))
    if rate_headers is not None:
        response.headers.update(rate_headers)
    return response


def _seat(request: web.Request, admission: Admission, priority: Priority) -> Seat:
    """The request's place in its client's counts of requests in progress; 429 past a cap."""
    inflight = admission.inflight
    identity = request.get(identity_keys.IDENTITY)
    address = client_address(request, admission.trusted) if inflight.per_address else None
    holder = holder_key(identity) if identity is not None and inflight.per_citizen else None
    try:
        return inflight.take(address, holder)
    except TooManyInFlight as refused:
        request.app[observability_keys.METRICS].admission_rejected.labels(
            f"inflight_{refused.kind}", priority.name.lower()
        ).inc()
        raise


def _shed(shed: Shed) -> ServiceUnavailable:
    return ServiceUnavailable(
        "the server is overloaded ({reason}); try again shortly",
        retry_after=shed.retry_after,
        reason=shed.reason,
        params={"reason": shed.reason},
    )
