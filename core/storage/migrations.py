"""Versioned schema migrations, each owned by a namespace (core, or one plugin).

A migration is applied at most once per database: the ``qatysu_migrations`` table records
(namespace, version). Versions in a namespace run in order, each in its own transaction.

A version creates what it created the day it shipped, whatever the code's tables have become
since: it builds from its own frozen copy of the table definitions (or its own DDL), never from
the tables the queries use. Built from those, version 1 of a fresh install would already have a
column that a later version adds, and that version's ``ALTER TABLE`` would then fail. A change
to a table is a new version; the frozen copies are never edited.

Instances started together (a rolling deploy, a compose start, several ``qatysu migrate``) may
migrate one database at once. Each run therefore applies under a lock, and each version checks
inside its own transaction that no one recorded it meanwhile, so the first run does the work and
the others wait, then find it done:

* PostgreSQL: a session advisory lock (``MIGRATION_LOCK``) held for the whole run. Without it,
  two runs creating one table collide in PostgreSQL's catalog (``UniqueViolation`` on
  ``pg_type_typname_nsp_index``) even with ``IF NOT EXISTS``.
* SQLite: every migration's transaction begins ``IMMEDIATE``, taking the file's one write lock
  before it reads the record (``core.storage.database``), and waits for it up to the busy
  timeout (30 s). Only processes on one machine share a SQLite file, and the lock covers them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.storage.database import Database

Upgrade = Callable[[AsyncConnection], Awaitable[None]]

log = logging.getLogger("qatysu")

# The advisory lock key of migrations in a PostgreSQL database: "qatysu" in ASCII, then 1.
MIGRATION_LOCK = 0x7161747973750001

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
    """Apply every pending migration; return a line per migration applied by this run."""
    sets = list(sets)
    for migration_set in sets:
        versions = [m.version for m in migration_set.migrations]
        if versions != sorted(set(versions)):
            raise ValueError(f"migrations of {migration_set.namespace} must have rising versions")
    applied: list[str] = []
    async with migration_lock(database):
        done = await applied_versions(database)
        for migration_set in sets:
            for migration in migration_set.migrations:
                if (migration_set.namespace, migration.version) in done:
                    continue
                async with database.transaction() as conn:
                    ran = await _apply_once(conn, migration_set.namespace, migration)
                if ran:
                    applied.append(
                        f"{migration_set.namespace} {migration.version}: {migration.description}"
                    )
    return applied


async def _apply_once(conn: AsyncConnection, namespace: str, migration: Migration) -> bool:
    """Apply and record ``migration`` unless another run recorded it first; True if applied."""
    recorded = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(migrations_table)
        .where(
            migrations_table.c.namespace == namespace,
            migrations_table.c.version == migration.version,
        )
    )
    if recorded:
        return False
    await migration.upgrade(conn)
    await conn.execute(
        migrations_table.insert().values(
            namespace=namespace,
            version=migration.version,
            description=migration.description,
            applied_at=dt.datetime.now(dt.UTC),
        )
    )
    return True


@asynccontextmanager
async def migration_lock(database: Database) -> AsyncIterator[None]:
    """Hold PostgreSQL's migration lock for a run: another run waits here, however long this one
    takes. On SQLite nothing is held: each migration's transaction takes the write lock."""
    if database.is_sqlite:
        yield
        return
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        # Waiting for another instance's migrations is no slow statement: never time it out.
        await conn.exec_driver_sql("SET statement_timeout = 0")
        await conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
        try:
            yield
        finally:
            try:
                await conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
                await conn.exec_driver_sql("RESET statement_timeout")
            except Exception as exc:
                # Closing the session frees the lock too; it must not go back to the pool
                # holding it. Not raised: the run's own outcome is what the caller needs.
                log.warning("migration lock not released (%s); its connection is closed", exc)
                await conn.invalidate()


async def pending_migrations(database: Database, sets: Iterable[MigrationSet]) -> list[str]:
    """The migrations the code has and the database has not recorded, as "namespace version".

    Reads only: readiness asks this, and a database nobody migrated has no record table yet.
    """
    async with database.read() as conn:
        exists = await conn.run_sync(lambda sync: sa.inspect(sync).has_table(migrations_table.name))
        done: set[tuple[str, int]] = set()
        if exists:
            rows = await conn.execute(
                sa.select(migrations_table.c.namespace, migrations_table.c.version)
            )
            done = {(row.namespace, row.version) for row in rows}
    return [
        f"{migration_set.namespace} {migration.version}"
        for migration_set in sets
        for migration in migration_set.migrations
        if (migration_set.namespace, migration.version) not in done
    ]
