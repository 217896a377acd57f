"""The request state the wire layer reads: when the head arrived and the body once read."""

from __future__ import annotations

from aiohttp import web

# When the request's head arrived (``time.monotonic()``), stamped by the connection layer.
ARRIVAL: web.RequestKey[float] = web.RequestKey("arrival")
# The request body, once read within its deadline (``core.wire.bodies.read_body``).
BODY: web.RequestKey[bytes] = web.RequestKey("body")
