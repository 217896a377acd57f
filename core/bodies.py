"""Reading JSON request bodies into validated models, and writing JSON responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from core.bounds import refused_characters, refused_fields
from core.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from core.i18n import Message

M = TypeVar("M", bound=BaseModel)


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; 415 for another media type, 413 when too large, 400 when malformed."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "the body must be application/json, not {content_type}",
            params={"content_type": request.content_type or Message("missing")},
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(
            "the body is larger than the limit of {limit} bytes",
            params={"limit": request.client_max_size},
        ) from exc
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
