"""Cursors for the channel's lists: keyset (a time and an id) or, for ranked search, an offset."""

from __future__ import annotations

import datetime as dt

from core.sdk import KEYSET_CURSOR, OFFSET_CURSOR, decode_cursor, encode_cursor, iso


def keyset_cursor(at: dt.datetime, row_id: str) -> str:
    return encode_cursor([iso(at), row_id])


def decode_keyset(cursor: str) -> tuple[dt.datetime, str]:
    """The time and id a keyset cursor points after; 400 for any other cursor."""
    return decode_cursor(cursor, KEYSET_CURSOR)


def offset_cursor(offset: int) -> str:
    return encode_cursor([offset])


def decode_offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    (offset,) = decode_cursor(cursor, OFFSET_CURSOR)
    return offset
