"""Versioned schema migrations, each owned by a namespace (core, or one plugin).

A migration is applied at most once per database: the ``qatysu_migrations`` table records
(namespace, version). Versions in a namespace run in order, each in its own transaction.

A version creates what it created the day it shipped, whatever the code's tables have become
since: it builds from its own frozen copy of the table definitions (or its own DDL), never from
the tables the queries use. Built from those, version 1 of a fresh install would already have a
column that a later version adds, and that version's ``ALTER TABLE`` would then fail. A change
to a table is a new version; the frozen copies are never edited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.storage.database import Database

Upgrade = Callable[[AsyncConnection], Awaitable[None]]

_metadata = sa.MetaData()
migrations_table = sa.Table(
    "qatysu_migrations",
    _metadata,
    sa.Column("namespace", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    version: int
    description: str
    upgrade: Upgrade


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationSet:
    namespace: str
    migrations: Sequence[Migration]


def create_tables(*tables: sa.Table) -> Upgrade:
    """An upgrade that creates these tables (and their indexes) as declared: the migration's own
    frozen copies, not the tables the queries use (see the module's docstring)."""

    async def upgrade(conn: AsyncConnection) -> None:
        for table in tables:
            await conn.run_sync(table.create)

    return upgrade


async def applied_versions(database: Database) -> set[tuple[str, int]]:
    async with database.transaction() as conn:
        await conn.run_sync(_metadata.create_all)
    async with database.read() as conn:
        rows = await conn.execute(
            sa.select(migrations_table.c.namespace, migrations_table.c.version)
        )
        return {(row.namespace, row.version) for row in rows}


async def migrate(database: Database, sets: Iterable[MigrationSet]) -> list[str]:
    """Apply every pending migration; return a line per migration applied."""
    done = await applied_versions(database)
    applied: list[str] = []
    for migration_set in sets:
        versions = [m.version for m in migration_set.migrations]
        if versions != sorted(set(versions)):
            raise ValueError(f"migrations of {migration_set.namespace} must have rising versions")
        for migration in migration_set.migrations:
            if (migration_set.namespace, migration.version) in done:
                continue
            async with database.transaction() as conn:
                await migration.upgrade(conn)
                await conn.execute(
                    migrations_table.insert().values(
                        namespace=migration_set.namespace,
                        version=migration.version,
                        description=migration.description,
                        applied_at=dt.datetime.now(dt.UTC),
                    )
                )
            applied.append(
                f"{migration_set.namespace} {migration.version}: {migration.description}"
            )
    return applied
