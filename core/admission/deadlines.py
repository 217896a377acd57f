"""When a request stops being worth starting: its arrival plus its time budget."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

from core.wire import keys as wire_keys

if TYPE_CHECKING:
    from aiohttp import web

    from core.plugin_host.routing import RoutePolicy

# A client may ask for less time than the route's deadline, or for more up to this.
MAX_REQUEST_TIMEOUT = 60.0


def request_deadline(request: web.Request, policy: RoutePolicy, default: float) -> float:
    """The request's arrival plus its ``Request-Timeout`` (seconds, capped), else plus the
    route's deadline, else plus ``default``. A header that is not a positive finite number is
    ignored."""
    budget = policy.deadline or default
    header = request.headers.get("Request-Timeout")
    if header is not None:
        with contextlib.suppress(ValueError):
            asked = float(header)
            if asked > 0 and math.isfinite(asked):
                budget = min(asked, MAX_REQUEST_TIMEOUT)
    return request[wire_keys.ARRIVAL] + budget
