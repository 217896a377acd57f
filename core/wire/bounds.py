"""What every supported database can store, checked at the boundary before a handler runs.

A value a database refuses must be refused with a 4xx naming the field, never reach a query:
there it becomes a 500 on a read, and on PostgreSQL one such value in a group-commit batch
fails every other write in the batch.

* Integers: ``sa.Integer`` is int4 on PostgreSQL, so integer fields stored in such a column
  are bounded by ``INT4_MAX``; SQLite's 64-bit integers hold that too.
* Datetimes: the year must stay within Python's range once converted to UTC, and any time
  zone may move ``0001-01-01`` or ``9999-12-31`` out of it.
* Text: PostgreSQL refuses NUL in text, so NUL is refused everywhere, on SQLite too, for one
  behaviour whatever the database.
* Nesting: a body nested deeper than ``MAX_DEPTH`` is refused with a 400. The walk that checks
  it keeps its own stack, so no depth the JSON parser accepts (orjson: 1,024) can exhaust
  Python's and turn into a 500.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from core.wire.errors import BadRequest, Unprocessable, field_error

INT4_MAX = 2**31 - 1
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
REFUSED_CHARACTERS = frozenset("\x00")
# Far deeper than any body a route declares, far shallower than what exhausts a recursive
# reader of the data (Python's stack, orjson.dumps at 255 levels).
MAX_DEPTH = 64


def _within_range(value: dt.datetime) -> dt.datetime:
    # Compare the wall-clock time first: converting 0001-01-01T00:00+14:00 to UTC overflows.
    naive = value.replace(tzinfo=None)
    if not (EARLIEST.replace(tzinfo=None) < naive < LATEST.replace(tzinfo=None)):
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    utc = value.astimezone(dt.UTC)
    if not (EARLIEST <= utc < LATEST):
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return utc


def _written_as_text(value: Any) -> Any:
    # pydantic would read a number as seconds since 1970; the document promises a date-time
    # string, so a number is as wrong as any other type.
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 date-time string, not a number")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_within_range)]
"""A time with a time zone, between 1900 and 9000, returned in UTC: what a cursor, checked
strictly against the JSON this server wrote, holds."""
Moment = Annotated[Instant, BeforeValidator(_written_as_text)]
"""An ISO 8601 time with a time zone, between 1900 and 9000, returned in UTC, as a client
writes it: a string, never a number."""


def refused_fields(data: Any) -> Iterator[str]:
    """The dotted location of every string in ``data`` (keys included) a database refuses, in
    document order; ``nested_too_deep()`` (400) once a container lies deeper than MAX_DEPTH."""
    stack: list[tuple[Any, str, int]] = [(data, "", 1)]
    while stack:
        value, location, depth = stack.pop()
        if isinstance(value, str):
            if not REFUSED_CHARACTERS.isdisjoint(value):
                yield location or "(body)"
            continue
        if isinstance(value, dict):
            # A key a database refuses is reported in place of its value.
            children = [
                (f"{location}.{key}" if location else str(key), _refused_key(key, item))
                for key, item in value.items()
            ]
        elif isinstance(value, list):
            children = [
                (f"{location}.{index}" if location else str(index), item)
                for index, item in enumerate(value)
            ]
        else:
            continue
        if depth > MAX_DEPTH:
            raise nested_too_deep()
        # Pushed in reverse, so that they are popped, and reported, in document order.
        stack.extend((item, name, depth + 1) for name, item in reversed(children))


def _refused_key(key: object, value: Any) -> Any:
    if isinstance(key, str) and not REFUSED_CHARACTERS.isdisjoint(key):
        return key
    return value


def nested_too_deep() -> BadRequest:
    """The 400 for a body nested deeper than any route reads."""
    return BadRequest("the body is nested deeper than {limit} levels", params={"limit": MAX_DEPTH})


def refused_characters(fields: list[str]) -> Unprocessable:
    """The 422 for ``fields`` holding a character no database stores. A field's name may hold
    one itself (a query or body key): it is named with the character escaped, since the answer
    promises no NUL either."""
    names = [escaped(name) for name in fields]
    return Unprocessable(
        "a NUL character is not allowed in: {fields}",
        errors=[field_error(name, "must not contain a NUL character") for name in names],
        params={"fields": ", ".join(names)},
    )


def escaped(text: str) -> str:
    """``text`` with each character no database stores written as its escape, ``\\u0000``."""
    return "".join(f"\\u{ord(c):04x}" if c in REFUSED_CHARACTERS else c for c in text)
