"""What a long-lived response (an event stream) may ask of admission and the connection layer.

A stream holds no slot, so it cannot be shed once open: the only defence is to refuse new
ones early. These are the questions a channel's stream handler asks, without reaching into
admission's or the connection guard's state itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.admission import keys as admission_keys
from core.admission.clients import client_address
from core.http import keys as http_keys
from core.observability import keys as observability_keys

if TYPE_CHECKING:
    from aiohttp import web

    from core.http.fastlane import StreamOpener

# The edge's drop probability from which new streams are all refused: PIE decays geometrically
# and reaches exactly zero only long after an overload, so "any at all" would refuse for minutes.
REFUSE_STREAMS_AT = 0.001


def overloaded(app: web.Application) -> bool:
    """Whether admission sees overload now: new streams are the first thing it refuses."""
    admission = app.get(admission_keys.ADMISSION)
    if admission is None:
        return False
    return (
        admission.pie.probability >= REFUSE_STREAMS_AT
        or admission.controller.queue_length() > 0
        # Connections wait in the kernel's accept queue: the flood has not reached Python yet.
        or admission.kernel_standing.standing
    )


def requester_address(request: web.Request) -> str | None:
    """The client's address as admission sees it (behind trusted proxies), if admission runs."""
    admission = request.app.get(admission_keys.ADMISSION)
    return client_address(request, admission.trusted) if admission is not None else None


def count_refusal(app: web.Application, reason: str) -> None:
    """Count a refused stream with admission's other refusals, under ``reason``."""
    app[observability_keys.METRICS].admission_rejected.labels(reason, "sheddable").inc()


def lasts(request: web.Request) -> None:
    """The response now started for ``request`` lasts and ends with its connection: no next
    request head is due on it meanwhile."""
    guard = request.app.get(http_keys.GUARD)
    if guard is not None:
        guard.long_response(request.transport)


def open_streams_in_lane(
    app: web.Application,
    prefix: bytes,
    suffix: bytes,
    *,
    route: str,
    route_name: str,
    opener: StreamOpener,
) -> bool:
    """Let the fast lane open the event streams of ``prefix + key + suffix`` through
    ``opener``, within the rate budget of the route named ``route_name``; False when this app
    has no fast lane."""
    lane = app.get(http_keys.FAST_LANE)
    if lane is None:
        return False
    admission = app.get(admission_keys.ADMISSION)
    rate = None
    if admission is not None and admission.settings.ratelimit_enabled:
        rate = admission.policy(app, route_name).rate
    lane.open_streams(prefix, suffix, route=route, rate=rate, opener=opener)
    return True
