"""Status transitions, done one way: a guarded ``UPDATE .. RETURNING``, explained when refused.

The UPDATE names the statuses a resource may move from (or, where a status is derived from
times, the conditions that make it), so two officials racing cannot both move it; only when no
row moved is the resource read again, to say why (404, 409, or the channel's own refusal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from core.wire.errors import Conflict, NotFound

if TYPE_CHECKING:
    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

    from core.wire.errors import Problem


async def transition(
    conn: AsyncConnection,
    table: sa.Table,
    resource_id: str,
    values: Mapping[str, Any],
    *,
    allowed_from: Iterable[str] | None,
    refusal: Callable[[Row[Any] | None], Problem],
    also: Iterable[sa.ColumnElement[bool]] = (),
) -> Row[Any]:
    """Move the row ``resource_id`` of ``table`` out of one of ``allowed_from`` (its ``status``
    column; None for a table whose state is derived), where every ``also`` condition holds, and
    return it as updated. When nothing moved, raise ``refusal(current row or None)``."""
    guards = [table.c.id == resource_id, *also]
    if allowed_from is not None:
        guards.append(table.c.status.in_(list(allowed_from)))
    moved = await conn.execute(sa.update(table).where(*guards).values(**values).returning(*table.c))
    row = moved.first()
    if row is not None:
        return row
    current = (await conn.execute(sa.select(table).where(table.c.id == resource_id))).first()
    raise refusal(current)


def not_found_or_conflict(
    missing: str, conflict: str, allowed_from: Iterable[str], *, status_field: str
) -> Callable[[Row[Any] | None], Problem]:
    """The usual refusal: 404 with ``missing``, else 409 with ``conflict``, a template that may
    name the row's ``{status}`` and the ``{allowed}`` ones; the body carries the status too."""
    allowed = ", ".join(sorted(allowed_from))

    def refusal(row: Row[Any] | None) -> Problem:
        if row is None:
            return NotFound(missing)
        return Conflict(
            conflict,
            extra={status_field: row.status},
            params={"status": row.status, "allowed": allowed},
        )

    return refusal
