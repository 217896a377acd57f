"""What a plugin's handlers share: the caller's identity, ids, time, pagination and moderation."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
from aiohttp import web
from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from core import keys
from core.bounds import INT4_MAX, Moment
from core.errors import BadRequest, Unprocessable, field_error
from core.events import Event
from core.i18n import Message
from core.identity import Identity, Role, ensure_role
from core.moderation import ModerationResult, TextSubmission, Verdict

if TYPE_CHECKING:
    from collections.abc import Iterable

CITIZEN = frozenset({Role.CITIZEN})
AGENCY = frozenset({Role.AGENCY})
MODERATOR = frozenset({Role.MODERATOR})
OFFICIALS = frozenset({Role.AGENCY, Role.MODERATOR, Role.OPERATOR})

T = TypeVar("T")

CursorId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]+$")]
CursorKey = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\x00]+$")]
CursorCount = Annotated[int, Field(ge=0, le=INT4_MAX)]
KEYSET_CURSOR: TypeAdapter[tuple[Moment, CursorId]] = TypeAdapter(tuple[Moment, CursorId])
"""A cursor after a row: its time and its id."""
OFFSET_CURSOR: TypeAdapter[tuple[CursorCount]] = TypeAdapter(tuple[CursorCount])
"""A cursor that skips rows; bounded so that offset plus page size stays a database integer."""


def caller(request: web.Request) -> Identity | None:
    """The verified identity of the caller, or None for an anonymous request."""
    return request.get(keys.IDENTITY)


def require(request: web.Request, roles: frozenset[Role]) -> Identity:
    """The caller's identity; 401 without a token, 403 with a role outside ``roles``."""
    return ensure_role(caller(request), roles)


def emit_event(
    request: web.Request, name: str, subject_id: str, payload: dict[str, Any] | None = None
) -> None:
    """Announce a committed change to event plugins; call only once the write has committed."""
    request.app[keys.EVENTS].emit(Event(name=name, subject_id=subject_id, payload=payload or {}))


def new_id() -> str:
    """An unguessable id: a restricted petition is reachable by its link alone."""
    return secrets.token_urlsafe(12)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    utc = as_utc(value)
    return utc.isoformat().replace("+00:00", "Z") if utc is not None else None


def encode_cursor(values: Iterable[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, shape: TypeAdapter[T]) -> T:
    """The values of a cursor this server made, checked against ``shape``; 400 for any other.

    Strict: a cursor is what this server encoded, so nothing is coerced, and every value is
    bounded to what its column holds, so a forged cursor never reaches a query.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
        return shape.validate_json(raw, strict=True)
    except (binascii.Error, UnicodeEncodeError, ValueError, ValidationError):
        raise BadRequest("the cursor is not one this server issued") from None


async def moderate_texts(
    request: web.Request, channel: str, texts: dict[str, str], language: str | None = None
) -> ModerationResult:
    """Ask moderation plugins about each citizen text; 422 naming the field when one is rejected.

    Returns the strongest verdict that is not a rejection (flag or allow), for the caller to store.
    """
    host = request.app[keys.PLUGINS]
    strongest = ModerationResult(verdict=Verdict.ALLOW)
    for field, text in texts.items():
        result = await host.moderate(
            TextSubmission(channel=channel, field=field, text=text, language=language)
        )
        if result.verdict is Verdict.REJECT:
            reason = result.reason or "the text was rejected by moderation"
            raise Unprocessable(
                "{field}: {reason}",
                errors=[field_error(field, reason)],
                params={"field": field, "reason": Message(reason)},
            )
        if result.verdict is Verdict.FLAG:
            strongest = result
    return strongest
