"""The consultation schema's versions: a fresh install reaches the declared tables, and version 1
does not follow later changes to them."""

from __future__ import annotations

from pathlib import Path

from core.storage.migrations import MigrationSet
from plugins.consultations.tables import MIGRATIONS, comments, metadata
from tests.support.schemas import added_column, declared, migrated, sibling_database


async def test_a_fresh_install_reaches_the_declared_tables(
    database_url: str, tmp_path: Path
) -> None:
    async with sibling_database(database_url, tmp_path) as sibling:
        expected = await declared(sibling, metadata)

    assert await migrated(database_url, MIGRATIONS, metadata.tables) == expected


async def test_version_1_creates_the_same_tables_after_a_live_table_changes(
    database_url: str, tmp_path: Path
) -> None:
    version_1 = MigrationSet(namespace=MIGRATIONS.namespace, migrations=MIGRATIONS.migrations[:1])
    async with sibling_database(database_url, tmp_path) as sibling:
        as_shipped = await migrated(sibling, version_1, metadata.tables)

    with added_column(comments):
        changed = await migrated(database_url, version_1, metadata.tables)

    assert "added_later" not in changed["consultation_comments"]["columns"]
    assert changed == as_shipped
