"""Closes petitions whose collection term ran out, in the background."""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sdk import CACHE, EVENTS, WRITER, Event, cache_key, utcnow
from plugins.petitions.lifecycle import Status
from plugins.petitions.settings import SECTION
from plugins.petitions.state import STATE
from plugins.petitions.tables import petitions


async def expire_overdue(app: web.Application) -> list[str]:
    """Mark restricted and public petitions past their term as expired; return their ids."""
    now = utcnow()

    async def write(conn: AsyncConnection) -> list[tuple[str, int]]:
        overdue = sa.or_(
            sa.and_(
                petitions.c.status == Status.RESTRICTED.value, petitions.c.restricted_until < now
            ),
            sa.and_(
                petitions.c.status == Status.PUBLIC.value, petitions.c.collection_ends_at < now
            ),
        )
        result = await conn.execute(
            sa.update(petitions)
            .where(overdue)
            .values(status=Status.EXPIRED.value, closed_at=now)
            .returning(petitions.c.id, petitions.c.signature_count)
        )
        return [(row.id, row.signature_count) for row in result]

    expired: list[tuple[str, int]] = await app[WRITER].submit(write)
    live = app[STATE].live
    for petition_id, count in expired:
        app[CACHE].invalidate(cache_key(SECTION, petition_id))
        app[EVENTS].emit(Event(name="petition.expired", subject_id=petition_id))
        live.changed(petition_id, count, Status.EXPIRED)
    return [petition_id for petition_id, _ in expired]
