"""Schemas as SQLAlchemy inspection sees them: to compare what migrations create with what the
live ``Table`` objects declare, on a database of each kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core.storage.database import Database
from core.storage.migrations import MigrationSet, migrate
from tests.support.services import PostgresServer

Schema = dict[str, dict[str, Any]]


@asynccontextmanager
async def sibling_database(url: str, tmp_path: Path) -> AsyncIterator[str]:
    """Another fresh, empty database of the same kind as ``url``."""
    if url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'sibling.db'}"
        return
    server = PostgresServer()
    sibling = await server.create_database()
    try:
        yield sibling
    finally:
        await server.drop_all()


async def inspected(url: str, names: Collection[str]) -> Schema:
    """Each table's columns (type as the dialect writes it, nullability, server default), primary
    key, foreign keys, indexes and unique constraints. Column order is left out: a column added
    by a later version comes last in an upgraded table, wherever the live table declares it."""

    def inspect(sync: sa.Connection) -> Schema:
        inspector = sa.inspect(sync)
        schema: Schema = {}
        for name in names:
            columns = {
                column["name"]: (
                    str(column["type"].compile(dialect=sync.dialect)),
                    column["nullable"],
                    column["default"],
                )
                for column in inspector.get_columns(name)
            }
            foreign_keys = {
                (tuple(fk["constrained_columns"]), fk["referred_table"], *fk["referred_columns"])
                for fk in inspector.get_foreign_keys(name)
            }
            indexes = {
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(name)
            }
            uniques = {
                tuple(unique["column_names"]) for unique in inspector.get_unique_constraints(name)
            }
            schema[name] = {
                "columns": columns,
                "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
                "foreign_keys": foreign_keys,
                "indexes": indexes,
                "uniques": uniques,
            }
        return schema

    database = Database(url)
    try:
        async with database.read() as conn:
            return await conn.run_sync(inspect)
    finally:
        await database.dispose()


async def migrated(url: str, migrations: MigrationSet, names: Collection[str]) -> Schema:
    """The schema a fresh install reaches: every version of ``migrations``, in order."""
    database = Database(url)
    try:
        await migrate(database, [migrations])
    finally:
        await database.dispose()
    return await inspected(url, names)


async def declared(url: str, metadata: sa.MetaData) -> Schema:
    """The schema of ``metadata``'s tables created as they are declared, in a fresh database."""
    database = Database(url)
    try:
        async with database.transaction() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await database.dispose()
    return await inspected(url, metadata.tables)


@contextmanager
def added_column(table: sa.Table) -> Iterator[sa.Column[Any]]:
    """``table`` with one more column while the block runs, as a later change would make it."""
    column: sa.Column[Any] = sa.Column("added_later", sa.Text)
    table.append_column(column)
    try:
        yield column
    finally:
        table._columns.remove(column)
