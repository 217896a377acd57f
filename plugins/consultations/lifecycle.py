"""When a consultation accepts comments and votes, derived from its times and its report.

    upcoming ──opens_at──▶ open ──closes_at, or the agency's report──▶ closed

Nothing here is stored: the status is computed from ``opens_at``, ``closes_at`` and
``report_published_at`` on every read, and the same rule is a SQL condition for lists and for
the writes that must find the consultation open.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from core.sdk import Conflict, as_utc, iso
from plugins.consultations.tables import consultations

if TYPE_CHECKING:
    from sqlalchemy.engine import Row


class Status(enum.StrEnum):
    UPCOMING = "upcoming"
    OPEN = "open"
    CLOSED = "closed"


class Position(enum.StrEnum):
    SUPPORT = "support"
    OPPOSE = "oppose"
    NEUTRAL = "neutral"


TALLY_COLUMNS: dict[Position, sa.Column[Any]] = {
    Position.SUPPORT: consultations.c.support_count,
    Position.OPPOSE: consultations.c.oppose_count,
    Position.NEUTRAL: consultations.c.neutral_count,
}


def status_at(row: Row[Any], now: dt.datetime) -> Status:
    if row.report_published_at is not None:
        return Status.CLOSED
    opens_at, closes_at = as_utc(row.opens_at), as_utc(row.closes_at)
    assert opens_at is not None
    assert closes_at is not None
    if now < opens_at:
        return Status.UPCOMING
    if now >= closes_at:
        return Status.CLOSED
    return Status.OPEN


def status_condition(status: Status, now: dt.datetime) -> sa.ColumnElement[bool]:
    """The SQL form of ``status_at``."""
    c = consultations.c
    if status is Status.UPCOMING:
        return sa.and_(c.report_published_at.is_(None), c.opens_at > now)
    if status is Status.OPEN:
        return sa.and_(c.report_published_at.is_(None), c.opens_at <= now, c.closes_at > now)
    return sa.or_(c.report_published_at.is_not(None), c.closes_at <= now)


def not_open(row: Row[Any], now: dt.datetime) -> Conflict | None:
    """Why a consultation takes no comments or votes now, or None when it is open."""
    status = status_at(row, now)
    if status is Status.OPEN:
        return None
    extra = {"consultation_status": status.value}
    if status is Status.UPCOMING:
        return Conflict(
            "the discussion opens at {at}", extra=extra, params={"at": iso(row.opens_at)}
        )
    if row.report_published_at is not None:
        return Conflict(
            "the discussion is closed: the agency has published its report", extra=extra
        )
    return Conflict("the discussion closed at {at}", extra=extra, params={"at": iso(row.closes_at)})
