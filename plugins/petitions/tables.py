"""The petition channel's tables and migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from core.storage.migrations import Migration, MigrationSet, create_tables

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


async def _version_3(conn: AsyncConnection) -> None:
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
            description="the signer's region, for the map of signatures",
            upgrade=_version_3,
        ),
    ],
)
