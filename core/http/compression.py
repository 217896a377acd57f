"""gzip for JSON answers above ``server.compression_min_bytes``, when the client accepts it.

A page of petitions is several kilobytes of repetitive JSON, which gzip shrinks to a fraction.
Small answers are sent as they are: below a kilobyte or so the header and the CPU cost more
than the bytes saved. Every JSON answer that is large enough to be compressed says
``Vary: Accept-Encoding``, compressed or not, so that a shared cache keeps both forms apart.

A compressed answer's ``ETag`` is made weak (as nginx does): its bytes differ from the
uncompressed one's, and ``If-None-Match`` uses weak comparison, so a 304 still works.
The fast lane's pre-rendered bytes are sent uncompressed: compressing them per request would
cost more than the lane saves, and a single document is small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.web import ContentCoding

from core import keys

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

COMPRESSIBLE = frozenset({"application/json", "application/problem+json"})


@web.middleware
async def compression_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Compress a large JSON answer with gzip when ``Accept-Encoding`` allows it."""
    response = await handler(request)
    if not _worth_compressing(response, request.app[keys.SETTINGS].server.compression_min_bytes):
        return response
    response.headers.add("Vary", "Accept-Encoding")
    if accepts_gzip(request.headers.get("Accept-Encoding", "")):
        etag = response.headers.get("ETag")
        if etag is not None and not etag.startswith("W/"):
            response.headers["ETag"] = "W/" + etag
        response.enable_compression(ContentCoding.gzip)
    return response


def _worth_compressing(response: web.StreamResponse, min_bytes: int) -> bool:
    if not isinstance(response, web.Response) or response.content_type not in COMPRESSIBLE:
        return False
    if "Content-Encoding" in response.headers:
        return False
    body = response.body
    return isinstance(body, bytes | bytearray) and len(body) >= min_bytes


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` value accepts gzip (``gzip`` or ``*``, not at q=0)."""
    wildcard = False
    for item in header.split(","):
        coding, _, parameters = item.strip().partition(";")
        coding = coding.strip().lower()
        if coding not in {"gzip", "x-gzip", "*"}:
            continue
        quality = _quality(parameters)
        if coding == "*":
            wildcard = quality > 0
        else:
            return quality > 0
    return wildcard


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0
