"""The information channel's schema versions: tables on both databases, then the search index
of the database in use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.storage.migrations import Migration, MigrationSet, create_tables
from plugins.information.search import backend_for
from plugins.information.tables import items, requests, translations

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


async def _create_schema(conn: AsyncConnection) -> None:
    await create_tables(items, translations, requests)(conn)
    await backend_for(conn.dialect.name).install(conn)


MIGRATIONS = MigrationSet(
    namespace="information",
    migrations=[
        Migration(
            version=1,
            description="published items with a full-text index, and access requests",
            upgrade=_create_schema,
        ),
    ],
)
