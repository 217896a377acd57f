"""Reading petitions and turning rows into the public shape."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import TypeAdapter

from core.sdk import (
    CursorCount,
    CursorId,
    as_utc,
    decode_cursor,
    decode_keyset,
    decode_offset,
    encode_cursor,
    iso,
    keyset_cursor,
    offset_cursor,
)
from plugins.petitions.lifecycle import Status
from plugins.petitions.reasons import labels
from plugins.petitions.search import matching
from plugins.petitions.signer_cursors import Position, SignerCursors
from plugins.petitions.tables import petitions, signatures

if TYPE_CHECKING:
    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection


def petition_document(row: Row[Any], now: dt.datetime) -> dict[str, Any]:
    """The public shape of a petition, with overdue flags derived from ``now``."""
    status = Status(row.status)
    moderation_due = as_utc(row.moderation_due_at)
    response_due = as_utc(row.response_due_at)
    response = None
    if row.responded_at is not None:
        response = {
            "text": row.response_text,
            "agency": row.response_agency,
            "responded_at": iso(row.responded_at),
        }
    return {
        "id": row.id,
        "title": row.title,
        "text": row.text,
        "addressee": row.addressee,
        "status": status.value,
        "author_name": row.author_name,
        "signature_count": row.signature_count,
        "threshold": row.threshold,
        "co_signer_minimum": row.co_signer_minimum,
        "created_at": iso(row.created_at),
        "moderation_due_at": iso(row.moderation_due_at),
        "moderation_overdue": status is Status.MODERATION
        and moderation_due is not None
        and now > moderation_due,
        "moderation_reason": row.moderation_reason,
        "moderation_reason_code": row.moderation_reason_code,
        "moderation_reason_labels": labels(row.moderation_reason_code),
        "moderation_flag": row.moderation_flag,
        "restricted_until": iso(row.restricted_until),
        "collection_ends_at": iso(row.collection_ends_at),
        "threshold_reached_at": iso(row.threshold_reached_at),
        "response_due_at": iso(row.response_due_at),
        "response_overdue": status is Status.AWAITING_RESPONSE
        and response_due is not None
        and now > response_due,
        "response": response,
    }


_BY_SIGNATURES_CURSOR: TypeAdapter[tuple[CursorCount, CursorId]] = TypeAdapter(
    tuple[CursorCount, CursorId]
)


async def fetch_petition(conn: AsyncConnection, petition_id: str) -> Row[Any] | None:
    result = await conn.execute(sa.select(petitions).where(petitions.c.id == petition_id))
    return result.first()


async def list_petitions(
    conn: AsyncConnection,
    *,
    statuses: frozenset[Status],
    addressee: str | None,
    sort: str,
    limit: int,
    cursor: str | None,
    terms: list[str] | None = None,
) -> tuple[list[Row[Any]], str | None]:
    """A keyset-paginated page, newest or most-signed first; ties break on id.

    With search ``terms``, best match first, then by ``sort``; such pages carry an offset
    cursor, since a relevance score is no stable key to page on.
    """
    order_column = petitions.c.created_at if sort == "created" else petitions.c.signature_count
    query = sa.select(petitions).where(petitions.c.status.in_([s.value for s in statuses]))
    if addressee is not None:
        query = query.where(petitions.c.addressee == addressee)
    if terms is not None:
        offset = decode_offset(cursor)
        query = matching(query, conn.dialect.name, terms)
        query = query.order_by(order_column.desc(), petitions.c.id.desc())
        rows = list((await conn.execute(query.offset(offset).limit(limit + 1))).all())
        return rows[:limit], offset_cursor(offset + limit) if len(rows) > limit else None
    if cursor is not None:
        value: dt.datetime | int
        if sort == "created":
            value, last_id = decode_keyset(cursor)
        else:
            value, last_id = decode_cursor(cursor, _BY_SIGNATURES_CURSOR)
        query = query.where(
            sa.or_(order_column < value, sa.and_(order_column == value, petitions.c.id < last_id))
        )
    query = query.order_by(order_column.desc(), petitions.c.id.desc()).limit(limit + 1)
    rows = list((await conn.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = (
            keyset_cursor(last.created_at, last.id)
            if sort == "created"
            else encode_cursor([last.signature_count, last.id])
        )
    return rows, next_cursor


async def list_signers(
    conn: AsyncConnection,
    petition_id: str,
    *,
    limit: int,
    after: Position | None,
    cursors: SignerCursors,
) -> tuple[list[dict[str, Any]], str | None]:
    """Signers in signing order, from just after ``after``: one index seek, however deep.

    The next cursor is sealed (``plugins.petitions.signer_cursors`` says why)."""
    query = sa.select(
        signatures.c.public_name, signatures.c.signed_at, signatures.c.citizen_hash
    ).where(signatures.c.petition_id == petition_id)
    if after is not None:
        signed_at, citizen_hash = after
        # Written so that the (petition_id, signed_at) index bounds the scan on both databases.
        query = query.where(
            signatures.c.signed_at >= signed_at,
            sa.or_(signatures.c.signed_at > signed_at, signatures.c.citizen_hash > citizen_hash),
        )
    query = query.order_by(signatures.c.signed_at, signatures.c.citizen_hash).limit(limit + 1)
    rows = list((await conn.execute(query)).all())
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = cursors.seal(petition_id, last.signed_at, last.citizen_hash)
    return [
        {"name": r.public_name, "signed_at": iso(r.signed_at)} for r in rows[:limit]
    ], next_cursor
