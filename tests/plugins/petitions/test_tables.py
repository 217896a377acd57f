"""The petition schema's own upgrade steps: a database made before a column gets it on upgrade
(the versions every channel shares are tested in tests/plugins/test_schemas.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from core.storage.database import Database
from core.storage.migrations import Migration, MigrationSet, create_tables, migrate
from plugins.petitions.tables import MIGRATIONS, petitions

ADDED_IN_2 = {"moderation_reason_code", "moderation_flag"}


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


async def _columns(database: Database, table: str = "petitions") -> set[str]:
    async with database.read() as conn:
        return await conn.run_sync(
            lambda sync: {c["name"] for c in sa.inspect(sync).get_columns(table)}
        )


async def test_version_2_adds_the_moderation_columns_to_a_version_1_table(
    database: Database,
) -> None:
    old = sa.Table(
        "petitions",
        sa.MetaData(),
        *(column._copy() for column in petitions.columns if column.name not in ADDED_IN_2),
    )
    version_1 = Migration(version=1, description="as first shipped", upgrade=create_tables(old))
    await migrate(database, [MigrationSet(namespace="petitions", migrations=[version_1])])
    assert not ADDED_IN_2 & await _columns(database)

    # Up to 3: the stand-in version 1 made no signatures table for version 4 to alter.
    up_to_3 = MigrationSet(namespace="petitions", migrations=MIGRATIONS.migrations[:3])
    applied = await migrate(database, [up_to_3])

    assert [line.split(":")[0] for line in applied] == ["petitions 2", "petitions 3"]
    assert await _columns(database) >= ADDED_IN_2


async def test_version_4_adds_the_region_column_to_the_signatures_of_version_3(
    database: Database,
) -> None:
    up_to_3 = MigrationSet(namespace="petitions", migrations=MIGRATIONS.migrations[:3])
    await migrate(database, [up_to_3])
    assert "region" not in await _columns(database, "petition_signatures")

    applied = await migrate(database, [MIGRATIONS])

    assert [line.split(":")[0] for line in applied] == ["petitions 4"]
    assert "region" in await _columns(database, "petition_signatures")


async def test_a_fresh_database_gets_every_column_from_every_version(database: Database) -> None:
    applied = await migrate(database, [MIGRATIONS])

    assert [line.split(":")[0] for line in applied] == [
        "petitions 1",
        "petitions 2",
        "petitions 3",
        "petitions 4",
    ]
    assert await _columns(database) == {column.name for column in petitions.columns}
