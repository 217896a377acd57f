"""Every channel's schema versions, by one set of tests: a fresh install reaches the declared
tables, and version 1 does not follow later changes to them. A channel's own upgrade steps
(a column added by version 2, say) are tested beside the channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.storage.migrations import MigrationSet
from plugins.consultations import tables as consultation_tables
from plugins.information import tables as information_tables
from plugins.petitions import tables as petition_tables
from tests.support.schemas import Schema, added_column, declared, migrated, sibling_database


@dataclass(frozen=True)
class ChannelSchema:
    migrations: MigrationSet
    metadata: sa.MetaData
    # A table whose live declaration a test changes after version 1 shipped.
    changed: sa.Table
    # What a migration adds on PostgreSQL beside the declared tables: table -> columns, indexes.
    postgres_extras: dict[str, tuple[dict[str, Any], set[Any]]] = field(default_factory=dict)


CHANNELS = {
    "petitions": ChannelSchema(
        petition_tables.MIGRATIONS, petition_tables.metadata, petition_tables.petitions
    ),
    "consultations": ChannelSchema(
        consultation_tables.MIGRATIONS, consultation_tables.metadata, consultation_tables.comments
    ),
    "information": ChannelSchema(
        information_tables.MIGRATIONS,
        information_tables.metadata,
        information_tables.items,
        # PostgreSQL searches a generated column the migration adds, with its index.
        postgres_extras={
            "information_items": (
                {"search_vector": ("TSVECTOR", True, None)},
                {("ix_information_items_search", ("search_vector",), False)},
            )
        },
    ),
}


def with_extras(expected: Schema, channel: ChannelSchema, database_url: str) -> Schema:
    if database_url.startswith("postgresql"):
        for table, (columns, indexes) in channel.postgres_extras.items():
            expected[table]["columns"].update(columns)
            expected[table]["indexes"].update(indexes)
    return expected


@pytest.mark.parametrize("name", CHANNELS)
async def test_a_fresh_install_reaches_the_declared_tables(
    name: str, database_url: str, tmp_path: Path
) -> None:
    channel = CHANNELS[name]
    async with sibling_database(database_url, tmp_path) as sibling:
        expected = await declared(sibling, channel.metadata)

    schema = await migrated(database_url, channel.migrations, channel.metadata.tables)

    assert schema == with_extras(expected, channel, database_url)


@pytest.mark.parametrize("name", CHANNELS)
async def test_version_1_creates_the_same_tables_after_a_live_table_changes(
    name: str, database_url: str, tmp_path: Path
) -> None:
    channel = CHANNELS[name]
    migrations = channel.migrations
    version_1 = MigrationSet(namespace=migrations.namespace, migrations=migrations.migrations[:1])
    async with sibling_database(database_url, tmp_path) as sibling:
        as_shipped = await migrated(sibling, version_1, channel.metadata.tables)

    with added_column(channel.changed):
        changed = await migrated(database_url, version_1, channel.metadata.tables)

    assert "added_later" not in changed[channel.changed.name]["columns"]
    assert changed == as_shipped
