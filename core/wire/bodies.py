"""Reading JSON request bodies into validated models, and writing JSON responses.

A body is read within a deadline (``BodyTimes``): the whole request, head and body, within
``server.request_timeout`` of its first byte, and, after ``server.body_grace`` seconds, at
``server.body_min_rate`` bytes a second at least. A client that trickles its body gets a 408 and
loses its connection, instead of holding a handler, and its admission slot, for as long as it
likes. Admission reads the body this way before the request takes a slot
(``core.admission.middleware``), and the connection guard closes a connection whose body is
late past the same deadline (``core.http.connections``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from core import keys
from core.wire import keys as wire_keys
from core.wire.bounds import refused_characters, refused_fields
from core.wire.errors import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    Unprocessable,
    UnsupportedMediaType,
)
from core.wire.i18n import Message

if TYPE_CHECKING:
    from core.settings import ServerSettings

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class BodyTimes:
    """When a request's body must have arrived, by how much of it has."""

    total: float
    min_rate: float
    grace: float

    @classmethod
    def of(cls, server: ServerSettings) -> BodyTimes:
        return cls(server.request_timeout, server.body_min_rate, server.body_grace)

    def due(self, arrival: float, received: int) -> float:
        """The deadline of a request whose head began at ``arrival`` and which has delivered
        ``received`` body bytes: each byte buys ``1 / min_rate`` seconds past the grace, up to
        the whole request's ``total``."""
        allowed = self.total
        if self.min_rate > 0:
            allowed = min(allowed, self.grace + received / self.min_rate)
        return arrival + allowed


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "the body is larger than the limit of {limit} bytes", params={"limit": limit}
    )


async def read_body(request: web.Request) -> bytes:
    """The whole body, read once within its deadline; 413 past the size limit, 408 when late.

    The bytes are kept on the request, so reading again costs nothing.
    """
    body: bytes | None = request.get(wire_keys.BODY)
    if body is not None:
        return body
    limit = request.client_max_size
    announced = request.content_length
    if announced is not None and announced > limit:
        raise too_large(limit)
    times = BodyTimes.of(request.app[keys.SETTINGS].server)
    arrival = request.get(wire_keys.ARRIVAL)
    if arrival is None:
        arrival = time.monotonic()
    content = request.content
    chunks: list[bytes] = []
    size = 0
    while True:
        if content.is_eof():
            # Everything has arrived (a body sent with its head): no timer to arm.
            chunk = await content.readany()
        else:
            left = times.due(arrival, size) - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                async with asyncio.timeout(left):
                    chunk = await content.readany()
            except TimeoutError:
                raise RequestTimeout(
                    "the request body did not arrive in time: {received} of its bytes came"
                    " in {seconds} s",
                    params={"received": size, "seconds": round(time.monotonic() - arrival, 1)},
                ) from None
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    body = request[wire_keys.BODY] = b"".join(chunks)
    return body


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; 415 for another media type, 413 when too large, 408 when late,
    400 when malformed."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "the body must be application/json, not {content_type}",
            params={"content_type": request.content_type or Message("missing")},
        )
    raw = await read_body(request)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            "the body is not valid JSON: {error} at line {line} column {column}",
            extra={"position": exc.pos, "line": exc.lineno, "column": exc.colno},
            params={"error": exc.msg, "line": exc.lineno, "column": exc.colno},
        ) from None


async def read_model(request: web.Request, model: type[M]) -> M:
    """The body validated against ``model``; 422 lists every field that is wrong."""
    return validate(model, await read_json(request))


def validate(model: type[M], data: Any) -> M:
    """``data`` as ``model``; 422 naming each field that is invalid or holds a refused character."""
    refused = list(refused_fields(data))
    if refused:
        raise refused_characters(refused)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(str(part) for part in error["loc"]) or "(body)",
                "message": error["msg"],
            }
            for error in exc.errors(include_url=False)
        ]
        raise Unprocessable(
            "{count} field(s) are invalid: {fields}",
            errors=errors,
            params={
                "count": len(errors),
                "fields": "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            },
        ) from None


def query_model(request: web.Request, model: type[M]) -> M:
    """Query-string parameters validated against ``model``; 422 lists each bad parameter."""
    return validate(model, dict(request.query))


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(data),
        content_type="application/json",
        headers=headers,
    )


class Body(BaseModel):
    """The base of every request body a route declares: an unknown field is a 422 naming it,
    rather than silently dropped, and text is stripped of surrounding whitespace."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
