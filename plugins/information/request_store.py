"""Reading access-to-information requests, and the shapes the parties and the public see."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from core.sdk import as_utc, decode_keyset, iso, keyset_cursor
from plugins.information.lifecycle import OPEN, RequestStatus
from plugins.information.tables import requests

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection


def public_document(row: Mapping[Any, Any], now: dt.datetime) -> dict[str, Any]:
    """What anyone may see of a public request: nothing about the requester."""
    status = RequestStatus(row["status"])
    due_at = as_utc(row["due_at"])
    replied_at = iso(row["replied_at"])
    answer = refusal = None
    if status is RequestStatus.ANSWERED:
        answer = {
            "text": row["reply_text"],
            "language": row["reply_language"],
            "answered_at": replied_at,
        }
    elif status is RequestStatus.REFUSED:
        refusal = {
            "reason": row["reply_text"],
            "language": row["reply_language"],
            "refused_at": replied_at,
        }
    extension = None
    if row["extended_at"] is not None:
        extension = {
            "reason": row["extension_reason"],
            "language": row["extension_language"],
            "extended_at": iso(row["extended_at"]),
        }
    return {
        "id": row["id"],
        "agency": row["agency"],
        "subject": row["subject"],
        "text": row["text"],
        "language": row["language"],
        "status": status.value,
        "overdue": status in OPEN and due_at is not None and now > due_at,
        "filed_at": iso(row["filed_at"]),
        "due_at": iso(row["due_at"]),
        "started_at": iso(row["started_at"]),
        "answer": answer,
        "refusal": refusal,
        "extension": extension,
    }


def private_document(row: Mapping[Any, Any], now: dt.datetime) -> dict[str, Any]:
    """What the requester and the agency asked see."""
    return {
        **public_document(row, now),
        "public": bool(row["public"]),
        "requester_name": row["requester_name"],
    }


def overdue_clause(now: dt.datetime) -> sa.ColumnElement[bool]:
    """The SQL twin of the ``overdue`` flag: still open and past the due date."""
    return sa.and_(requests.c.status.in_([s.value for s in OPEN]), requests.c.due_at < now)


async def fetch_request(conn: AsyncConnection, request_id: str) -> Row[Any] | None:
    return (await conn.execute(sa.select(requests).where(requests.c.id == request_id))).first()


async def list_requests(
    conn: AsyncConnection,
    *,
    where: list[sa.ColumnElement[bool]],
    by_due_date: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """A keyset page: by due date, soonest first (a queue), or newest filed first."""
    column = requests.c.due_at if by_due_date else requests.c.filed_at
    query = sa.select(requests).where(*where)
    if cursor is not None:
        at, last_id = decode_keyset(cursor)
        if by_due_date:
            after = sa.or_(column > at, sa.and_(column == at, requests.c.id > last_id))
            query = query.where(after)
        else:
            before = sa.or_(column < at, sa.and_(column == at, requests.c.id < last_id))
            query = query.where(before)
    if by_due_date:
        query = query.order_by(column.asc(), requests.c.id.asc())
    else:
        query = query.order_by(column.desc(), requests.c.id.desc())
    rows = list((await conn.execute(query.limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = keyset_cursor(last.due_at if by_due_date else last.filed_at, last.id)
    return rows[:limit], next_cursor
