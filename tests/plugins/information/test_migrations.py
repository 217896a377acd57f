"""The information schema's own step: the full-text search index of each database (the versions
every channel shares are tested in tests/plugins/test_schemas.py)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from core.storage.database import Database
from plugins.information.tables import MIGRATIONS, metadata
from tests.support.schemas import migrated


async def test_sqlite_gets_a_full_text_table_and_postgresql_does_not(
    database_url: str, tmp_path: Path
) -> None:
    await migrated(database_url, MIGRATIONS, metadata.tables)
    database = Database(database_url)
    try:
        async with database.read() as conn:
            names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    finally:
        await database.dispose()
    assert ("information_items_fts" in names) == database_url.startswith("sqlite")
