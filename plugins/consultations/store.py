"""Reading consultations and comments, and turning rows into their public shape."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import TypeAdapter

from core.sdk import (
    Conflict,
    CursorKey,
    NotFound,
    Problem,
    decode_cursor,
    decode_keyset,
    encode_cursor,
    iso,
    keyset_cursor,
)
from plugins.consultations.lifecycle import Status, not_open, status_at, status_condition
from plugins.consultations.tables import comments, consultations, report_answers, sections

if TYPE_CHECKING:
    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_THREAD_CURSOR: TypeAdapter[tuple[CursorKey]] = TypeAdapter(tuple[CursorKey])


def new_comment_id() -> str:
    """Hex, so that it can sit inside a thread key."""
    return secrets.token_hex(8)


def thread_key(parent_key: str, comment_id: str, created_at: dt.datetime) -> str:
    """The parent's key and this comment's creation time (fixed-width hex) and id."""
    micros = (created_at - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{parent_key}{micros:014x}{comment_id}"


def summary_document(row: Row[Any], now: dt.datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "agency": row.agency,
        "title": row.title,
        "summary": row.summary,
        "status": status_at(row, now).value,
        "kind": row.kind,
        "opens_at": iso(row.opens_at),
        "closes_at": iso(row.closes_at),
        "created_at": iso(row.created_at),
        "votes": {
            "support": row.support_count,
            "oppose": row.oppose_count,
            "neutral": row.neutral_count,
        },
        "comment_count": row.comment_count,
        "report_published_at": iso(row.report_published_at),
    }


async def consultation_document(
    conn: AsyncConnection, row: Row[Any], now: dt.datetime
) -> dict[str, Any]:
    """The full public shape: sections, tallies and the report once published."""
    section_rows = await conn.execute(
        sa.select(sections.c.number, sections.c.heading, sections.c.text)
        .where(sections.c.consultation_id == row.id)
        .order_by(sections.c.number)
    )
    report = None
    if row.report_published_at is not None:
        answer_rows = await conn.execute(
            sa.select(report_answers.c.comment_id, report_answers.c.answer)
            .where(report_answers.c.consultation_id == row.id)
            .order_by(report_answers.c.ordinal)
        )
        report = {
            "summary": row.report_summary,
            "published_at": iso(row.report_published_at),
            "answers": [{"comment_id": a.comment_id, "answer": a.answer} for a in answer_rows],
        }
    return {
        **summary_document(row, now),
        "sections": [
            {"number": s.number, "heading": s.heading, "text": s.text} for s in section_rows
        ],
        "report": report,
    }


async def fetch_consultation(conn: AsyncConnection, consultation_id: str) -> Row[Any] | None:
    result = await conn.execute(
        sa.select(consultations).where(consultations.c.id == consultation_id)
    )
    return result.first()


async def ensure_open(conn: AsyncConnection, consultation_id: str, now: dt.datetime) -> Row[Any]:
    """The consultation; 404 when unknown, 409 when it takes no comments or votes now."""
    row = await fetch_consultation(conn, consultation_id)
    if row is None:
        raise NotFound("no such consultation")
    refusal = not_open(row, now)
    if refusal is not None:
        raise refusal
    return row


async def closed_meanwhile(
    conn: AsyncConnection, consultation_id: str, now: dt.datetime
) -> Problem:
    """The refusal for a write whose open-only update matched no row."""
    row = await fetch_consultation(conn, consultation_id)
    if row is None:
        return NotFound("no such consultation")
    return not_open(row, now) or Conflict("the consultation is not open")


async def section_exists(conn: AsyncConnection, consultation_id: str, number: int) -> bool:
    found = await conn.scalar(
        sa.select(sections.c.number).where(
            sections.c.consultation_id == consultation_id, sections.c.number == number
        )
    )
    return found is not None


async def fetch_comment(
    conn: AsyncConnection, consultation_id: str, comment_id: str
) -> Row[Any] | None:
    """The comment if it belongs to this consultation."""
    result = await conn.execute(
        sa.select(comments).where(
            comments.c.id == comment_id, comments.c.consultation_id == consultation_id
        )
    )
    return result.first()


async def comments_of(
    conn: AsyncConnection, consultation_id: str, comment_ids: list[str]
) -> set[str]:
    """Which of these comments belong to this consultation."""
    if not comment_ids:
        return set()
    rows = await conn.execute(
        sa.select(comments.c.id).where(
            comments.c.consultation_id == consultation_id, comments.c.id.in_(comment_ids)
        )
    )
    return {row.id for row in rows}


async def list_consultations(
    conn: AsyncConnection,
    *,
    status: Status | None,
    agency: str | None,
    now: dt.datetime,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """A keyset-paginated page, newest first; ties break on id."""
    c = consultations.c
    query = sa.select(consultations)
    if status is not None:
        query = query.where(status_condition(status, now))
    if agency is not None:
        query = query.where(c.agency == agency)
    if cursor is not None:
        created_at, last_id = decode_keyset(cursor)
        query = query.where(
            sa.or_(c.created_at < created_at, sa.and_(c.created_at == created_at, c.id < last_id))
        )
    query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
    rows = list((await conn.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = keyset_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


async def list_comments(
    conn: AsyncConnection,
    consultation_id: str,
    *,
    section: int | None,
    include_hidden: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """A page of comments in thread order; the cursor is the last comment's thread key."""
    query = sa.select(comments).where(comments.c.consultation_id == consultation_id)
    if section is not None:
        query = query.where(comments.c.section == section)
    if not include_hidden:
        query = query.where(comments.c.hidden_at.is_(None))
    if cursor is not None:
        (after,) = decode_cursor(cursor, _THREAD_CURSOR)
        query = query.where(comments.c.thread_key > after)
    query = query.order_by(comments.c.thread_key).limit(limit + 1)
    rows = list((await conn.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1].thread_key])
    return rows, next_cursor


def comment_document(row: Row[Any], *, moderation: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": row.id,
        "consultation_id": row.consultation_id,
        "section": row.section,
        "parent_id": row.parent_id,
        "depth": row.depth,
        "text": row.text,
        "author_name": row.author_name,
        "created_at": iso(row.created_at),
    }
    if moderation:
        document.update(
            flagged=row.flagged, hidden_at=iso(row.hidden_at), hidden_reason=row.hidden_reason
        )
    return document
