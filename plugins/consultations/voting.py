"""One vote per citizen, with tallies kept exact in the vote's own transaction.

The tallies are counter columns on the consultation, moved by +1/-1 in SQL (never written back
from a value read) in the transaction that inserts or changes the vote. So they are exact under
any concurrency: in one process the writer serialises writes, and across processes on
PostgreSQL the counter update takes the consultation's row lock and re-checks, after waiting,
that the consultation is still open. Counting votes on each read would be exact too, but it costs
a scan of every vote on the hottest read; the counters cost one row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from plugins.consultations.lifecycle import TALLY_COLUMNS, Position, Status, status_condition
from plugins.consultations.store import closed_meanwhile, ensure_open
from plugins.consultations.tables import consultations, votes

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class VoteOutcome:
    created: bool
    changed: bool
    tallies: dict[str, int]


async def cast_vote(
    conn: AsyncConnection,
    consultation_id: str,
    citizen_hash: str,
    position: Position,
    now: dt.datetime,
) -> VoteOutcome:
    """Insert or change the citizen's vote and move the tallies; 404 or 409 when it cannot."""
    await ensure_open(conn, consultation_id, now)
    created = await _insert(conn, consultation_id, citizen_hash, position, now)
    deltas: dict[Position, int] = {position: 1} if created else {}
    changed = False
    if not created:
        previous = Position(
            (
                await conn.execute(
                    sa.select(votes.c.position)
                    .where(
                        votes.c.consultation_id == consultation_id,
                        votes.c.citizen_hash == citizen_hash,
                    )
                    .with_for_update()
                )
            ).scalar_one()
        )
        if previous is not position:
            changed = True
            await conn.execute(
                sa.update(votes)
                .where(
                    votes.c.consultation_id == consultation_id, votes.c.citizen_hash == citizen_hash
                )
                .values(position=position.value, changed_at=now)
            )
            deltas = {previous: -1, position: 1}
    tallies = await _move_tallies(conn, consultation_id, deltas, now)
    if tallies is None:
        # Closed by a report committed in another process since ensure_open looked.
        raise await closed_meanwhile(conn, consultation_id, now)
    return VoteOutcome(created=created, changed=changed, tallies=tallies)


async def _insert(
    conn: AsyncConnection,
    consultation_id: str,
    citizen_hash: str,
    position: Position,
    now: dt.datetime,
) -> bool:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(votes)
        .values(
            consultation_id=consultation_id,
            citizen_hash=citizen_hash,
            position=position.value,
            voted_at=now,
        )
        .on_conflict_do_nothing()
        .returning(votes.c.citizen_hash)
    )
    return (await conn.execute(statement)).first() is not None


async def _move_tallies(
    conn: AsyncConnection, consultation_id: str, deltas: dict[Position, int], now: dt.datetime
) -> dict[str, int] | None:
    values: dict[str, Any] = {
        column.name: column + deltas[position]
        for position, column in TALLY_COLUMNS.items()
        if deltas.get(position)
    }
    if not values:
        # Nothing moves, but the update still takes the row lock and re-checks it is open.
        values = {"support_count": consultations.c.support_count}
    row = (
        await conn.execute(
            sa.update(consultations)
            .where(consultations.c.id == consultation_id, status_condition(Status.OPEN, now))
            .values(**values)
            .returning(*TALLY_COLUMNS.values())
        )
    ).first()
    if row is None:
        return None
    return {position.value: row[index] for index, position in enumerate(TALLY_COLUMNS)}
