"""Time as the server stores and shows it: aware UTC, written as ISO 8601 with a ``Z``."""

from __future__ import annotations

import datetime as dt


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
