"""The information channel's tables, and its schema versions: tables on both databases, then
the search index of the database in use.

What each version created is frozen in its migration: a change to the tables above or to the
search is a new version, and the versions are never edited (``core.storage.migrations`` says
why). Only DDL matters to a migration, so Python-side defaults are left out of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from core.sdk import Migration, MigrationSet, create_tables

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


metadata = sa.MetaData()

items = sa.Table(
    "information_items",
    metadata,
    # An integer key that never changes: SQLite's FTS5 index refers to rows by it (a plain rowid
    # may be renumbered by VACUUM).
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("agency", sa.String(64), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    # The translations' titles and bodies in one text, so one full-text index covers them all.
    sa.Column("translations_text", sa.Text, nullable=False, default=""),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_information_items_published", "published_at", "id"),
    sa.Index("ix_information_items_agency", "agency", "published_at"),
    sa.Index("ix_information_items_category", "category", "published_at"),
)

translations = sa.Table(
    "information_translations",
    metadata,
    sa.Column("item_id", sa.String(32), sa.ForeignKey("information_items.id"), primary_key=True),
    sa.Column("language", sa.String(2), primary_key=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_information_translations_language", "language", "item_id"),
)

requests = sa.Table(
    "information_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("agency", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("language", sa.String(2), nullable=False),
    # The keyed hash of the requester's IIN, never the IIN itself.
    sa.Column("requester_hash", sa.String(64), nullable=False),
    sa.Column("requester_name", sa.String(120)),
    sa.Column("public", sa.Boolean, nullable=False, default=False),
    sa.Column("flagged", sa.Boolean, nullable=False, default=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    # The agency's answer or its reason for refusing, told apart by the status.
    sa.Column("reply_text", sa.Text),
    sa.Column("reply_language", sa.String(2)),
    sa.Column("replied_at", sa.DateTime(timezone=True)),
    # The agency's extension of the answer term (due_at then holds the extended date): when it
    # was decided, and the reason the requester is told, in its language.
    sa.Column("extended_at", sa.DateTime(timezone=True)),
    sa.Column("extension_reason", sa.Text),
    sa.Column("extension_language", sa.String(2)),
    sa.Index("ix_information_requests_queue", "agency", "due_at", "id"),
    sa.Index("ix_information_requests_requester", "requester_hash", "filed_at", "id"),
    sa.Index("ix_information_requests_public", "public", "filed_at", "id"),
)


_version_1 = sa.MetaData()
sa.Table(
    "information_items",
    _version_1,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("agency", sa.String(64), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("translations_text", sa.Text, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_information_items_published", "published_at", "id"),
    sa.Index("ix_information_items_agency", "agency", "published_at"),
    sa.Index("ix_information_items_category", "category", "published_at"),
)
sa.Table(
    "information_translations",
    _version_1,
    sa.Column("item_id", sa.String(32), sa.ForeignKey("information_items.id"), primary_key=True),
    sa.Column("language", sa.String(2), primary_key=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_information_translations_language", "language", "item_id"),
)
sa.Table(
    "information_requests",
    _version_1,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("agency", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("requester_hash", sa.String(64), nullable=False),
    sa.Column("requester_name", sa.String(120)),
    sa.Column("public", sa.Boolean, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("reply_text", sa.Text),
    sa.Column("reply_language", sa.String(2)),
    sa.Column("replied_at", sa.DateTime(timezone=True)),
    sa.Index("ix_information_requests_queue", "agency", "due_at", "id"),
    sa.Index("ix_information_requests_requester", "requester_hash", "filed_at", "id"),
    sa.Index("ix_information_requests_public", "public", "filed_at", "id"),
)

# plugins.information.search queries these: an external-content FTS5 table kept in step by
# triggers on SQLite, a generated tsvector column with a GIN index on PostgreSQL.
_SEARCH_VERSION_1 = {
    "sqlite": [
        "CREATE VIRTUAL TABLE information_items_fts USING fts5(title, body, translations_text, "
        "content='information_items', content_rowid='seq')",
        "CREATE TRIGGER information_items_fts_insert AFTER INSERT ON information_items BEGIN "
        "INSERT INTO information_items_fts(rowid, title, body, translations_text) "
        "VALUES (new.seq, new.title, new.body, new.translations_text); END",
        "CREATE TRIGGER information_items_fts_delete AFTER DELETE ON information_items BEGIN "
        "INSERT INTO information_items_fts(information_items_fts, rowid, title, body, "
        "translations_text) VALUES ('delete', old.seq, old.title, old.body, "
        "old.translations_text); END",
        "CREATE TRIGGER information_items_fts_update AFTER UPDATE ON information_items BEGIN "
        "INSERT INTO information_items_fts(information_items_fts, rowid, title, body, "
        "translations_text) VALUES ('delete', old.seq, old.title, old.body, "
        "old.translations_text); "
        "INSERT INTO information_items_fts(rowid, title, body, translations_text) "
        "VALUES (new.seq, new.title, new.body, new.translations_text); END",
    ],
    "postgresql": [
        "ALTER TABLE information_items ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('simple'::regconfig, title), 'A') || "
        "setweight(to_tsvector('simple'::regconfig, body), 'B') || "
        "setweight(to_tsvector('simple'::regconfig, translations_text), 'B')) STORED",
        "CREATE INDEX ix_information_items_search ON information_items USING GIN (search_vector)",
    ],
}


async def _version_1_schema(conn: AsyncConnection) -> None:
    await create_tables(*_version_1.sorted_tables)(conn)
    try:
        statements = _SEARCH_VERSION_1[conn.dialect.name]
    except KeyError:
        raise ValueError(f"no full-text search for the {conn.dialect.name!r} database") from None
    for statement in statements:
        await conn.exec_driver_sql(statement)


# Version 2: a request's extension of its answer term.
_EXTENSION_COLUMNS = (
    ("extended_at", sa.DateTime(timezone=True)),
    ("extension_reason", sa.Text()),
    ("extension_language", sa.String(2)),
)


async def _version_2_extensions(conn: AsyncConnection) -> None:
    for name, column_type in _EXTENSION_COLUMNS:
        ddl = column_type.compile(dialect=conn.dialect)
        await conn.exec_driver_sql(f"ALTER TABLE information_requests ADD COLUMN {name} {ddl}")


MIGRATIONS = MigrationSet(
    namespace="information",
    migrations=[
        Migration(
            version=1,
            description="published items with a full-text index, and access requests",
            upgrade=_version_1_schema,
        ),
        Migration(
            version=2,
            description="a request's extension of its answer term",
            upgrade=_version_2_extensions,
        ),
    ],
)
