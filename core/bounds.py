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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime

from core.errors import Unprocessable, field_error

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
REFUSED_CHARACTERS = frozenset("\x00")


def _within_range(value: dt.datetime) -> dt.datetime:
    # Compare the wall-clock time first: converting 0001-01-01T00:00+14:00 to UTC overflows.
    naive = value.replace(tzinfo=None)
    if not (EARLIEST.replace(tzinfo=None) < naive < LATEST.replace(tzinfo=None)):
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    utc = value.astimezone(dt.UTC)
    if not (EARLIEST <= utc < LATEST):
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return utc


Moment = Annotated[AwareDatetime, AfterValidator(_within_range)]
"""An ISO 8601 time with a time zone, between 1900 and 9000, returned in UTC."""


def refused_fields(data: Any, location: str = "") -> Iterator[str]:
    """The dotted location of every string in ``data`` (keys included) a database refuses."""
    if isinstance(data, str):
        if not REFUSED_CHARACTERS.isdisjoint(data):
            yield location or "(body)"
    elif isinstance(data, dict):
        for key, value in data.items():
            name = f"{location}.{key}" if location else str(key)
            if isinstance(key, str) and not REFUSED_CHARACTERS.isdisjoint(key):
                yield name
            else:
                yield from refused_fields(value, name)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from refused_fields(value, f"{location}.{index}" if location else str(index))


def refused_characters(fields: list[str]) -> Unprocessable:
    """The 422 for ``fields`` holding a character no database stores."""
    return Unprocessable(
        "a NUL character is not allowed in: {fields}",
        errors=[field_error(name, "must not contain a NUL character") for name in fields],
        params={"fields": ", ".join(fields)},
    )
