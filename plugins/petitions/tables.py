"""The petition channel's tables and migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from core.sdk import Migration, MigrationSet, create_tables

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

metadata = sa.MetaData()

petitions = sa.Table(
    "petitions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("addressee", sa.String(64), nullable=False),
    # No longer written (the API's addressee_agency field is gone). A row filed before the
    # agency register may name its answering agency here instead of in ``addressee``, and
    # answering still honours it (``handlers._transition``), so the column stays.
    sa.Column("addressee_agency", sa.String(64)),
    sa.Column("author_hash", sa.String(64), nullable=False),
    sa.Column("author_name", sa.String(120), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False, default=False),
    sa.Column("signature_count", sa.Integer, nullable=False, default=0),
    sa.Column("threshold", sa.Integer, nullable=False),
    sa.Column("co_signer_minimum", sa.Integer, nullable=False),
    sa.Column("was_public", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("moderation_due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("moderated_at", sa.DateTime(timezone=True)),
    sa.Column("moderation_reason", sa.Text),
    sa.Column("moderation_reason_code", sa.String(64)),
    sa.Column("moderation_flag", sa.Text),
    sa.Column("restricted_until", sa.DateTime(timezone=True)),
    sa.Column("collection_ends_at", sa.DateTime(timezone=True)),
    sa.Column("threshold_reached_at", sa.DateTime(timezone=True)),
    sa.Column("response_due_at", sa.DateTime(timezone=True)),
    sa.Column("response_text", sa.Text),
    sa.Column("response_agency", sa.String(64)),
    sa.Column("responded_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Index("ix_petitions_status_created", "status", "created_at", "id"),
    sa.Index("ix_petitions_status_signatures", "status", "signature_count", "id"),
    sa.Index("ix_petitions_author", "author_hash"),
)

signatures = sa.Table(
    "petition_signatures",
    metadata,
    sa.Column("petition_id", sa.String(32), sa.ForeignKey("petitions.id"), primary_key=True),
    # The keyed hash of the signer's IIN: the primary key makes a second signature impossible.
    sa.Column("citizen_hash", sa.String(64), primary_key=True),
    sa.Column("public_name", sa.String(120), nullable=False),
    sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
    # The signer's region code from the register, when the identity provider vouched for one.
    sa.Column("region", sa.String(64)),
    sa.Index("ix_signatures_petition_time", "petition_id", "signed_at"),
)

# What each version created, frozen: a change to the tables above is a new version, and these
# are never edited (core.storage.migrations says why). Only DDL matters here, so Python-side
# defaults are left out.
_version_1 = sa.MetaData()
sa.Table(
    "petitions",
    _version_1,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("addressee", sa.String(64), nullable=False),
    sa.Column("addressee_agency", sa.String(64)),
    sa.Column("author_hash", sa.String(64), nullable=False),
    sa.Column("author_name", sa.String(120), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("signature_count", sa.Integer, nullable=False),
    sa.Column("threshold", sa.Integer, nullable=False),
    sa.Column("co_signer_minimum", sa.Integer, nullable=False),
    sa.Column("was_public", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("moderation_due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("moderated_at", sa.DateTime(timezone=True)),
    sa.Column("moderation_reason", sa.Text),
    sa.Column("restricted_until", sa.DateTime(timezone=True)),
    sa.Column("collection_ends_at", sa.DateTime(timezone=True)),
    sa.Column("threshold_reached_at", sa.DateTime(timezone=True)),
    sa.Column("response_due_at", sa.DateTime(timezone=True)),
    sa.Column("response_text", sa.Text),
    sa.Column("response_agency", sa.String(64)),
    sa.Column("responded_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Index("ix_petitions_status_created", "status", "created_at", "id"),
    sa.Index("ix_petitions_status_signatures", "status", "signature_count", "id"),
    sa.Index("ix_petitions_author", "author_hash"),
)
sa.Table(
    "petition_signatures",
    _version_1,
    sa.Column("petition_id", sa.String(32), sa.ForeignKey("petitions.id"), primary_key=True),
    sa.Column("citizen_hash", sa.String(64), primary_key=True),
    sa.Column("public_name", sa.String(120), nullable=False),
    sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_signatures_petition_time", "petition_id", "signed_at"),
)


async def _version_2(conn: AsyncConnection) -> None:
    await conn.exec_driver_sql(
        "ALTER TABLE petitions ADD COLUMN moderation_reason_code VARCHAR(64)"
    )
    await conn.exec_driver_sql("ALTER TABLE petitions ADD COLUMN moderation_flag TEXT")


# plugins.petitions.search queries these: a table of its own, filled by triggers when a petition
# is filed, so that signing (which updates the petition's row) never re-tokenises its text.
_SEARCH_SQLITE = [
    "CREATE VIRTUAL TABLE petitions_fts USING fts5(petition_id UNINDEXED, title, text)",
    "CREATE TRIGGER petitions_fts_insert AFTER INSERT ON petitions BEGIN "
    "INSERT INTO petitions_fts(petition_id, title, text) VALUES (new.id, new.title, new.text); "
    "END",
    "CREATE TRIGGER petitions_fts_update AFTER UPDATE OF title, text ON petitions BEGIN "
    "DELETE FROM petitions_fts WHERE petition_id = old.id; "
    "INSERT INTO petitions_fts(petition_id, title, text) VALUES (new.id, new.title, new.text); "
    "END",
    "CREATE TRIGGER petitions_fts_delete AFTER DELETE ON petitions BEGIN "
    "DELETE FROM petitions_fts WHERE petition_id = old.id; END",
    "INSERT INTO petitions_fts(petition_id, title, text) SELECT id, title, text FROM petitions",
]
_SEARCH_DOCUMENT = (
    "setweight(to_tsvector('simple'::regconfig, {row}.title), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, {row}.text), 'B')"
)
_SEARCH_POSTGRESQL = [
    "CREATE TABLE petitions_search (petition_id VARCHAR(32) PRIMARY KEY "
    "REFERENCES petitions (id) ON DELETE CASCADE, document tsvector NOT NULL)",
    "CREATE INDEX ix_petitions_search_document ON petitions_search USING GIN (document)",
    "CREATE FUNCTION petitions_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO petitions_search (petition_id, document) "
    f"VALUES (NEW.id, {_SEARCH_DOCUMENT.format(row='NEW')}) "
    "ON CONFLICT (petition_id) DO UPDATE SET document = EXCLUDED.document; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER petitions_search_refresh AFTER INSERT OR UPDATE OF title, text ON petitions "
    "FOR EACH ROW EXECUTE FUNCTION petitions_search_refresh()",
    "INSERT INTO petitions_search (petition_id, document) "
    f"SELECT id, {_SEARCH_DOCUMENT.format(row='petitions')} FROM petitions",
]


async def _version_3(conn: AsyncConnection) -> None:
    statements = {"sqlite": _SEARCH_SQLITE, "postgresql": _SEARCH_POSTGRESQL}
    try:
        dialect_statements = statements[conn.dialect.name]
    except KeyError:
        raise ValueError(f"no full-text search for the {conn.dialect.name!r} database") from None
    for statement in dialect_statements:
        await conn.exec_driver_sql(statement)


async def _version_4(conn: AsyncConnection) -> None:
    await conn.exec_driver_sql("ALTER TABLE petition_signatures ADD COLUMN region VARCHAR(64)")


MIGRATIONS = MigrationSet(
    namespace="petitions",
    migrations=[
        Migration(
            version=1,
            description="petitions and their signatures",
            upgrade=create_tables(*_version_1.sorted_tables),
        ),
        Migration(
            version=2,
            description="the statutory reason code of a rejection, and a moderation plugin's flag",
            upgrade=_version_2,
        ),
        Migration(
            version=3,
            description="full-text search over petition titles and texts",
            upgrade=_version_3,
        ),
        Migration(
            version=4,
            description="the signer's region, for the map of signatures",
            upgrade=_version_4,
        ),
    ],
)
