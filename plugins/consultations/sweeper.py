"""Records the close of consultations whose discussion period ran out, and announces it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from core.sdk import CACHE, EVENTS, WRITER, Event, cache_key, utcnow
from plugins.consultations.settings import SECTION
from plugins.consultations.tables import consultations

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy.ext.asyncio import AsyncConnection


async def record_closed(app: web.Application) -> list[str]:
    """Record the close of every consultation past ``closes_at``; return their ids."""
    now = utcnow()

    async def write(conn: AsyncConnection) -> list[str]:
        result = await conn.execute(
            sa.update(consultations)
            .where(consultations.c.close_recorded_at.is_(None), consultations.c.closes_at <= now)
            .values(close_recorded_at=now)
            .returning(consultations.c.id)
        )
        return [row.id for row in result]

    closed: list[str] = await app[WRITER].submit(write)
    for consultation_id in closed:
        app[CACHE].invalidate(cache_key(SECTION, consultation_id))
        app[EVENTS].emit(
            Event(
                name="consultation.closed", subject_id=consultation_id, payload={"by": "deadline"}
            )
        )
    return closed
