"""Cursors for the channel's lists: keyset (a time and an id) or, for ranked search, an offset."""

from __future__ import annotations

import datetime as dt

from core.api import decode_cursor, encode_cursor, iso
from core.errors import BadRequest

_FOREIGN = "the cursor is not one this server issued"


def keyset_cursor(at: dt.datetime, row_id: str) -> str:
    return encode_cursor([iso(at), row_id])


def decode_keyset(cursor: str) -> tuple[dt.datetime, str]:
    """The time and id a keyset cursor points after; 400 for any other cursor."""
    at, row_id = decode_cursor(cursor, 2)
    if not isinstance(at, str) or not isinstance(row_id, str):
        raise BadRequest(_FOREIGN)
    try:
        return dt.datetime.fromisoformat(at), row_id
    except ValueError:
        raise BadRequest(_FOREIGN) from None


def offset_cursor(offset: int) -> str:
    return encode_cursor([offset])


def decode_offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    (offset,) = decode_cursor(cursor, 1)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise BadRequest(_FOREIGN)
    return offset
