"""The engine: URLs as users write them, and SQLite's durability settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from core.settings import SettingsError
from core.storage.database import Database, async_url


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
