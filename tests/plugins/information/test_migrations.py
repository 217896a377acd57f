"""The information schema's versions: a fresh install reaches the declared tables plus the
search index of its database, and version 1 does not follow later changes to the tables."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from core.storage.database import Database
from core.storage.migrations import MigrationSet
from plugins.information.migrations import MIGRATIONS
from plugins.information.tables import items, metadata
from tests.support.schemas import added_column, declared, migrated, sibling_database

# PostgreSQL searches a generated column the migration adds beside the declared ones.
SEARCH_COLUMN = {"search_vector": ("TSVECTOR", True, None)}
SEARCH_INDEX = ("ix_information_items_search", ("search_vector",), False)


async def test_a_fresh_install_reaches_the_declared_tables_and_the_search_index(
    database_url: str, tmp_path: Path
) -> None:
    async with sibling_database(database_url, tmp_path) as sibling:
        expected = await declared(sibling, metadata)

    schema = await migrated(database_url, MIGRATIONS, metadata.tables)

    if database_url.startswith("postgresql"):
        expected["information_items"]["columns"].update(SEARCH_COLUMN)
        expected["information_items"]["indexes"].add(SEARCH_INDEX)
    assert schema == expected
    database = Database(database_url)
    try:
        async with database.read() as conn:
            names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    finally:
        await database.dispose()
    assert ("information_items_fts" in names) == database_url.startswith("sqlite")


async def test_version_1_creates_the_same_tables_after_a_live_table_changes(
    database_url: str, tmp_path: Path
) -> None:
    version_1 = MigrationSet(namespace=MIGRATIONS.namespace, migrations=MIGRATIONS.migrations[:1])
    async with sibling_database(database_url, tmp_path) as sibling:
        as_shipped = await migrated(sibling, version_1, metadata.tables)

    with added_column(items):
        changed = await migrated(database_url, version_1, metadata.tables)

    assert "added_later" not in changed["information_items"]["columns"]
    assert changed == as_shipped
