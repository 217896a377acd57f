"""Reading and writing published items and access-to-information requests, and the shapes the
parties and the public see."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from core.sdk import as_utc, decode_keyset, decode_offset, iso, keyset_cursor, offset_cursor
from plugins.information.lifecycle import OPEN, RequestStatus
from plugins.information.search import backend_for
from plugins.information.tables import items, requests, translations

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection


def item_document(
    item: Mapping[Any, Any], item_translations: Sequence[Mapping[Any, Any]]
) -> dict[str, Any]:
    return {
        "id": item["id"],
        "agency": item["agency"],
        "category": item["category"],
        "language": item["language"],
        "title": item["title"],
        "body": item["body"],
        "translations": [
            {"language": t["language"], "title": t["title"], "body": t["body"]}
            for t in sorted(item_translations, key=lambda t: str(t["language"]))
        ],
        "published_at": iso(item["published_at"]),
    }


async def insert_item(
    conn: AsyncConnection, item: Mapping[Any, Any], item_translations: Sequence[Mapping[Any, Any]]
) -> None:
    await conn.execute(items.insert().values(**item))
    if item_translations:
        await conn.execute(translations.insert(), [dict(t) for t in item_translations])


async def fetch_item(conn: AsyncConnection, item_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(items).where(items.c.id == item_id))).first()
    if row is None:
        return None
    found = await _translations_of(conn, [item_id])
    return item_document(row._mapping, found.get(item_id, []))


async def list_items(
    conn: AsyncConnection,
    *,
    agency: str | None,
    category: str | None,
    language: str | None,
    terms: Sequence[str] | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of items, newest first; with search ``terms``, best match first.

    Search pages carry an offset cursor: a relevance score is no stable key to page on.
    """
    query = sa.select(items)
    if agency is not None:
        query = query.where(items.c.agency == agency)
    if category is not None:
        query = query.where(items.c.category == category)
    if language is not None:
        translated = sa.exists().where(
            translations.c.item_id == items.c.id, translations.c.language == language
        )
        query = query.where(sa.or_(items.c.language == language, translated))
    newest_first = (items.c.published_at.desc(), items.c.id.desc())
    if terms is not None:
        offset = decode_offset(cursor)
        query = backend_for(conn.dialect.name).apply(query, terms)
        query = query.order_by(*newest_first).offset(offset).limit(limit + 1)
        rows = list((await conn.execute(query)).all())
        next_cursor = offset_cursor(offset + limit) if len(rows) > limit else None
    else:
        if cursor is not None:
            published, last_id = decode_keyset(cursor)
            query = query.where(
                sa.or_(
                    items.c.published_at < published,
                    sa.and_(items.c.published_at == published, items.c.id < last_id),
                )
            )
        rows = list((await conn.execute(query.order_by(*newest_first).limit(limit + 1))).all())
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = keyset_cursor(last.published_at, last.id)
    rows = rows[:limit]
    found = await _translations_of(conn, [row.id for row in rows])
    return [item_document(row._mapping, found.get(row.id, [])) for row in rows], next_cursor


async def _translations_of(
    conn: AsyncConnection, item_ids: Sequence[str]
) -> dict[str, list[Mapping[Any, Any]]]:
    if not item_ids:
        return {}
    result = await conn.execute(sa.select(translations).where(translations.c.item_id.in_(item_ids)))
    found: dict[str, list[Mapping[Any, Any]]] = {}
    for row in result:
        found.setdefault(row.item_id, []).append(row._mapping)
    return found


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
