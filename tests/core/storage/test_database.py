"""The engine: URLs as users write them, SQLite's durability settings, and the wait for a
database at start-up."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from core.settings import SettingsError
from core.storage import keys as storage_keys
from core.storage.database import (
    Database,
    DatabaseUnreachable,
    async_url,
    storage_failure,
    wait_until_reachable,
)
from tests.support.problems import problem


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///x", "sqlite+aiosqlite:///x"),
        ("sqlite:////var/lib/qatysu/q.db", "sqlite+aiosqlite:////var/lib/qatysu/q.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgres://u:secret@h:5433/d", "postgresql+asyncpg://u:secret@h:5433/d"),
        ("postgresql+psycopg2://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_async_url_picks_the_async_driver(url: str, expected: str) -> None:
    assert async_url(url) == expected


@pytest.mark.parametrize(
    ("url", "driver"), [("mysql://u@h/d", "mysql"), ("oracle://u@h/d", "oracle")]
)
def test_async_url_refuses_an_unsupported_database_naming_the_setting(
    url: str, driver: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        async_url(url)
    assert str(caught.value) == (
        f"database.url: {driver!r} is not supported; use sqlite:/// or postgresql://"
    )


def test_async_url_refuses_what_is_not_a_url() -> None:
    with pytest.raises(SettingsError) as caught:
        async_url("just a path")
    assert str(caught.value) == "database.url 'just a path' is not a database URL"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@h:port/d", "database.url 'postgresql://u@h:port/d' is not a database URL"),
        ("postgresql://u@h:0/d", "database.url: port 0 is not between 1 and 65535"),
        ("postgresql://u@h:65536/d", "database.url: port 65536 is not between 1 and 65535"),
    ],
)
def test_async_url_refuses_a_port_that_is_no_port(url: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        async_url(url)
    assert str(caught.value) == message


async def test_waiting_for_a_database_that_answers_returns_at_once(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with asyncio.timeout(10):
            await wait_until_reachable(database, wait=0)
    finally:
        await database.dispose()


async def test_waiting_for_a_database_that_never_answers_warns_once_then_names_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    database = Database("postgresql://u:hidden@127.0.0.1:1/d")
    pings = 0
    ping = database.ping

    async def counted() -> None:
        nonlocal pings
        pings += 1
        await ping()

    database.ping = counted  # type: ignore[method-assign]
    try:
        with pytest.raises(DatabaseUnreachable) as caught:
            await wait_until_reachable(database, wait=0.3, pause=0.05)
    finally:
        await database.dispose()
    assert str(caught.value).startswith(
        "cannot reach the database at postgresql://u:***@127.0.0.1:1/d: ConnectionRefusedError: "
    )
    assert pings >= 3
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith("the database at postgresql://u:***@127.0.0.1:1/d does not answer")


async def test_sqlite_runs_in_wal_mode_with_synchronous_full(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'q.db'}")
    try:
        async with database.read() as conn:
            journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            synchronous = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            foreign_keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        async with database.transaction() as conn:
            write_synchronous = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
    finally:
        await database.dispose()
    assert journal == "wal"
    assert synchronous == 2  # FULL
    assert write_synchronous == 2
    assert foreign_keys == 1
    assert (tmp_path / "deep" / "dir" / "q.db").exists()


async def test_a_transaction_commits_on_exit_and_rolls_back_on_error(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.transaction() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        async with database.transaction() as conn:
            await conn.exec_driver_sql("INSERT INTO t (n) VALUES (1)")

        async def abandoned_insert() -> None:
            async with database.transaction() as conn:
                await conn.exec_driver_sql("INSERT INTO t (n) VALUES (2)")
                raise RuntimeError("abandon")

        with pytest.raises(RuntimeError):
            await abandoned_insert()
        async with database.read() as conn:
            rows = (await conn.exec_driver_sql("SELECT n FROM t")).scalars().all()
    finally:
        await database.dispose()
    assert rows == [1]


async def test_ping_answers_on_each_database(database_url: str) -> None:
    database = Database(database_url)
    try:
        await database.ping()
        assert database.is_sqlite is database_url.startswith("sqlite")
        assert database.dialect == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    finally:
        await database.dispose()


async def test_a_database_error_carries_no_bound_parameter(database_url: str) -> None:
    database = Database(database_url)
    secret_value = "900101300126-must-not-leak"
    try:
        async with database.engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE leak_probe (id TEXT PRIMARY KEY)"))
            await conn.execute(sa.text("INSERT INTO leak_probe VALUES (:id)"), {"id": secret_value})
            with pytest.raises(sa.exc.IntegrityError) as caught:
                await conn.execute(
                    sa.text("INSERT INTO leak_probe VALUES (:id)"), {"id": secret_value}
                )
        assert secret_value not in str(caught.value)
        assert "[SQL parameters hidden due to hide_parameters=True]" in str(caught.value)
    finally:
        await database.dispose()


# Only PostgreSQL has statement_timeout and read-only databases; SQLite's answers to a stall
# (busy_timeout) and to a full disk are its own.
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@postgresql_only
async def test_the_configured_statement_timeout_is_set_on_each_postgresql_connection(
    make_client: Any, database_url: str
) -> None:
    client = await make_client(database_url, database={"statement_timeout": 1.5})
    database = client.app[storage_keys.DATABASE]
    # Held together, the two are distinct pooled connections: the reader's and the writer's.
    async with database.read() as reading, database.transaction() as writing:
        shown = [
            (await conn.exec_driver_sql("SHOW statement_timeout")).scalar()
            for conn in (reading, writing)
        ]
    assert shown == ["1500ms", "1500ms"]


@postgresql_only
async def test_statement_timeout_bounds_reads_and_writes_held_by_a_lock_on_postgresql(
    make_client: Any, database_url: str, approved_petition, sign
) -> None:
    client = await make_client(database_url, database={"statement_timeout": 0.5})
    petition = await approved_petition(client)
    locker = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE petitions IN ACCESS EXCLUSIVE MODE")
        # The guard only keeps a broken build from hanging the suite; 0.5 s is the bound.
        async with asyncio.timeout(20):
            read = await client.get("/api/v1/petitions")
            write = await sign(client, petition["id"], 2)
            ready = await client.get("/readyz")
        read_problem = await problem(read, 503)
        assert read_problem["detail"] == "storage is not answering; try again shortly"
        assert read.headers["Retry-After"] == "1"
        write_problem = await problem(write, 503)
        assert write_problem["detail"] == "storage failed to commit the write; it was not saved"
        assert ready.status == 200
        await transaction.rollback()
    finally:
        await locker.close()
    assert (await client.get("/api/v1/petitions")).status == 200
    assert (await sign(client, petition["id"], 2)).status == 201


@postgresql_only
async def test_a_read_only_postgresql_refuses_writes_with_503_and_keeps_serving_reads(
    make_client: Any, database_url: str, approved_petition, sign
) -> None:
    client = await make_client(database_url)
    petition = await approved_petition(client)
    database = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    finally:
        await admin.close()
    read_only = await make_client(database_url)
    signed = await sign(read_only, petition["id"], 2)
    refused = await problem(signed, 503)
    assert refused["detail"] == "storage failed to commit the write; it was not saved"
    assert signed.headers["Retry-After"] == "1"
    assert (await read_only.get(f"/api/v1/petitions/{petition['id']}")).status == 200
    assert (await read_only.get("/readyz")).status == 200


@pytest.mark.parametrize(
    ("sqlstate", "whole"),
    [
        ("57014", True),
        ("55P03", True),
        ("08006", True),
        ("25006", True),
        ("53100", True),
        ("22021", False),
        ("23505", False),
    ],
)
def test_storage_failure_tells_a_failing_database_from_one_statements_data(
    sqlstate: str, whole: bool
) -> None:
    class DriverError(Exception):
        pass

    orig = DriverError("x")
    orig.sqlstate = sqlstate  # type: ignore[attr-defined]
    assert storage_failure(DBAPIError("SELECT 1", {}, orig)) is whole


def test_storage_failure_on_sqlite_is_an_operational_error() -> None:
    assert storage_failure(OperationalError("INSERT", {}, Exception("database is locked")))
    assert not storage_failure(IntegrityError("INSERT", {}, Exception("UNIQUE failed")))
    assert not storage_failure(ValueError("a bug"))
