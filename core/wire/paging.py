"""Pages of a list: how many rows a page holds, and the opaque cursor to the next page."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import orjson
from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from core.clock import iso
from core.wire.bounds import INT4_MAX, Instant
from core.wire.errors import BadRequest

if TYPE_CHECKING:
    from collections.abc import Iterable

T = TypeVar("T")

CursorId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]+$")]
CursorKey = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\x00]+$")]
CursorCount = Annotated[int, Field(ge=0, le=INT4_MAX)]
KEYSET_CURSOR: TypeAdapter[tuple[Instant, CursorId]] = TypeAdapter(tuple[Instant, CursorId])
"""A cursor after a row: its time and its id."""
OFFSET_CURSOR: TypeAdapter[tuple[CursorCount]] = TypeAdapter(tuple[CursorCount])
"""A cursor that skips rows; bounded so that offset plus page size stays a database integer."""


MAX_PAGE_LIMIT = 100
"""The most rows a client may ask for; a channel's ``max_page_size`` may cap a page lower."""
PageLimit = Annotated[
    int | None,
    Field(
        ge=1,
        le=MAX_PAGE_LIMIT,
        description="rows per page, 1 to 100; without it the channel's default page size, "
        "and never more than its configured max_page_size (100 unless an operator lowers it)",
    ),
]
PageCursor = Annotated[
    str | None,
    Field(
        max_length=200,
        description='opaque and server-issued: the next_cursor (or the Link rel="next") of '
        "the previous page of the same query, passed back unchanged; any other value is 400",
    ),
]


class PageSizes(Protocol):
    """The settings of a channel that lists things."""

    @property
    def default_page_size(self) -> int: ...

    @property
    def max_page_size(self) -> int: ...


def page_size(asked: int | None, sizes: PageSizes) -> int:
    """The rows a page holds: what the client asked for, within the channel's maximum."""
    return min(asked or sizes.default_page_size, sizes.max_page_size)


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


def keyset_cursor(at: dt.datetime, row_id: str) -> str:
    """The cursor after a row of a list ordered by a time and then an id."""
    return encode_cursor([iso(at), row_id])


def decode_keyset(cursor: str) -> tuple[dt.datetime, str]:
    """The time and id a keyset cursor points after; 400 for any other cursor."""
    return decode_cursor(cursor, KEYSET_CURSOR)


def offset_cursor(offset: int) -> str:
    """The cursor of a list without a stable key (ranked search): the rows to skip."""
    return encode_cursor([offset])


def decode_offset(cursor: str | None) -> int:
    """The rows an offset cursor skips (0 without one); 400 for any other cursor."""
    if cursor is None:
        return 0
    (offset,) = decode_cursor(cursor, OFFSET_CURSOR)
    return offset
