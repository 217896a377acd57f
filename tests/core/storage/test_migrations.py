"""Versioned migrations: each applied once, in order, recorded; versions must rise; runs that
race (instances started together) wait for each other and find the work done."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from core.plugin_host.plugins import PluginHost
from core.settings import build_settings
from core.storage.database import Database
from core.storage.migrations import (
    Migration,
    MigrationSet,
    Upgrade,
    applied_versions,
    create_tables,
    migrate,
    migrations_table,
    pending_migrations,
)
from tests.support.services import REPO_ROOT, PostgresServer

metadata = sa.MetaData()
notes = sa.Table(
    "test_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


def recording(log: list[str], name: str, statement: str | None = None) -> Upgrade:
    async def upgrade(conn: AsyncConnection) -> None:
        log.append(name)
        if statement is not None:
            await conn.exec_driver_sql(statement)

    return upgrade


def notes_set(log: list[str], *extra: Migration) -> MigrationSet:
    return MigrationSet(
        namespace="notes",
        migrations=[
            Migration(version=1, description="notes table", upgrade=create_tables(notes)),
            Migration(
                version=2,
                description="a column",
                upgrade=recording(log, "v2", "ALTER TABLE test_notes ADD COLUMN tag TEXT"),
            ),
            Migration(
                version=5,
                description="an index",
                upgrade=recording(log, "v5", "CREATE INDEX ix_test_notes_tag ON test_notes (tag)"),
            ),
            *extra,
        ],
    )


async def recorded(database: Database) -> list[tuple[str, int, str]]:
    async with database.read() as conn:
        rows = await conn.execute(
            sa.select(
                migrations_table.c.namespace,
                migrations_table.c.version,
                migrations_table.c.description,
            ).order_by(migrations_table.c.namespace, migrations_table.c.version)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_migrations_apply_in_order_and_are_recorded(database: Database) -> None:
    log: list[str] = []
    applied = await migrate(database, [notes_set(log)])
    assert applied == ["notes 1: notes table", "notes 2: a column", "notes 5: an index"]
    assert log == ["v2", "v5"]
    assert await recorded(database) == [
        ("notes", 1, "notes table"),
        ("notes", 2, "a column"),
        ("notes", 5, "an index"),
    ]
    async with database.transaction() as conn:
        await conn.execute(sa.text("INSERT INTO test_notes (id, text, tag) VALUES (1, 'x', 't')"))


async def test_a_second_run_applies_nothing(database: Database) -> None:
    log: list[str] = []
    await migrate(database, [notes_set(log)])
    assert await migrate(database, [notes_set(log)]) == []
    assert log == ["v2", "v5"]
    assert len(await recorded(database)) == 3


async def test_only_new_versions_apply_later(database: Database) -> None:
    log: list[str] = []
    await migrate(database, [notes_set(log)])
    later = Migration(version=6, description="later", upgrade=recording(log, "v6"))
    assert await migrate(database, [notes_set(log, later)]) == ["notes 6: later"]
    assert log == ["v2", "v5", "v6"]
    assert await applied_versions(database) == {
        ("notes", 1),
        ("notes", 2),
        ("notes", 5),
        ("notes", 6),
    }


async def test_namespaces_are_versioned_independently(database: Database) -> None:
    log: list[str] = []
    other = MigrationSet(
        namespace="other",
        migrations=[
            Migration(version=1, description="other one", upgrade=recording(log, "other-1")),
        ],
    )
    applied = await migrate(database, [notes_set(log), other])
    assert "other 1: other one" in applied
    assert ("other", 1) in await applied_versions(database)


@pytest.mark.parametrize("versions", [[2, 1], [1, 1], [1, 3, 2]])
async def test_versions_that_do_not_rise_are_refused(
    database: Database, versions: list[int]
) -> None:
    log: list[str] = []
    bad = MigrationSet(
        namespace="bad",
        migrations=[
            Migration(version=v, description=f"v{v}", upgrade=recording(log, f"v{v}"))
            for v in versions
        ],
    )
    with pytest.raises(ValueError, match=r"^migrations of bad must have rising versions$"):
        await migrate(database, [bad])
    assert log == []
    assert await applied_versions(database) == set()


async def test_a_failing_migration_is_not_recorded_and_stops_the_run(database: Database) -> None:
    log: list[str] = []

    async def broken(conn: AsyncConnection) -> None:
        await conn.exec_driver_sql("CREATE TABLE half_done (n INTEGER)")
        raise RuntimeError("migration bug")

    failing = MigrationSet(
        namespace="failing",
        migrations=[
            Migration(version=1, description="fine", upgrade=recording(log, "f1")),
            Migration(version=2, description="broken", upgrade=broken),
            Migration(version=3, description="after", upgrade=recording(log, "f3")),
        ],
    )
    with pytest.raises(RuntimeError, match="migration bug"):
        await migrate(database, [failing])
    assert log == ["f1"]
    assert await applied_versions(database) == {("failing", 1)}
    async with database.read() as conn:
        tables: Any = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    assert "half_done" not in tables


# --- runs that race: instances started together ----------------------------------------------


def slow_set(log: list[str]) -> MigrationSet:
    """Versions that hold their transactions open a while, so that two runs surely overlap:
    the second reads what is recorded while the first is still applying."""

    def slowly(name: str, upgrade: Upgrade) -> Upgrade:
        async def run(conn: AsyncConnection) -> None:
            log.append(name)
            await upgrade(conn)
            await asyncio.sleep(0.3)

        return run

    return MigrationSet(
        namespace="notes",
        migrations=[
            Migration(
                version=1, description="notes table", upgrade=slowly("v1", create_tables(notes))
            ),
            Migration(
                version=2,
                description="a column",
                upgrade=slowly(
                    "v2", recording([], "v2", "ALTER TABLE test_notes ADD COLUMN tag TEXT")
                ),
            ),
        ],
    )


async def test_two_runs_at_once_apply_each_migration_once_and_both_succeed(
    database_url: str,
) -> None:
    log: list[str] = []
    first, second = Database(database_url), Database(database_url)
    try:
        results = await asyncio.gather(
            migrate(first, [slow_set(log)]), migrate(second, [slow_set(log)])
        )
    finally:
        await first.dispose()
        await second.dispose()
    assert log == ["v1", "v2"]
    assert sorted(line for lines in results for line in lines) == [
        "notes 1: notes table",
        "notes 2: a column",
    ]


async def test_pending_migrations_names_what_the_database_has_not_recorded(
    database: Database,
) -> None:
    log: list[str] = []
    assert await pending_migrations(database, [notes_set(log)]) == ["notes 1", "notes 2", "notes 5"]
    async with database.read() as conn:
        tables: Any = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    assert tables == []  # asking created nothing, not even the record table
    await migrate(database, [notes_set(log)])
    assert await pending_migrations(database, [notes_set(log)]) == []
    later = notes_set(log, Migration(version=6, description="later", upgrade=recording(log, "v6")))
    assert await pending_migrations(database, [later]) == ["notes 6"]


def run_migrate(url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QATYSU_")}
    environment["QATYSU_SERVER__DATA_DIR"] = str(tmp_path)
    return subprocess.Popen(
        [sys.executable, "-m", "core.host.cli", "migrate", "--database-url", url],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_all(processes: list[subprocess.Popen[bytes]]) -> list[tuple[int, str]]:
    outcomes = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=120)
            outcomes.append((process.returncode, output.decode()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outcomes


@pytest.mark.slow
async def test_four_qatysu_migrate_at_once_on_one_fresh_postgresql_database_all_exit_0(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = await postgres_server.create_database()
    try:
        outcomes = wait_all([run_migrate(url, tmp_path) for _ in range(4)])
        database = Database(url)
        try:
            assert (
                await pending_migrations(database, PluginHost(build_settings({})).migrations())
                == []
            )
        finally:
            await database.dispose()
    finally:
        await postgres_server.drop_all()
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
    # One run did the work under the lock; the others waited for it and found it done.
    last_lines = [output.splitlines()[-1] for _, output in outcomes]
    assert last_lines.count("schema up to date") == 3
    assert [line for line in last_lines if line.endswith(" migration(s) applied")] != []


@pytest.mark.slow
def test_two_qatysu_migrate_at_once_on_one_fresh_sqlite_file_both_exit_0(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'qatysu.db'}"
    outcomes = wait_all([run_migrate(url, tmp_path) for _ in range(2)])
    assert [code for code, _ in outcomes] == [0, 0], outcomes
