"""The consultation channel's tables and migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from core.sdk import Migration, MigrationSet, create_tables

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

metadata = sa.MetaData()

consultations = sa.Table(
    "consultations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("agency", sa.String(64), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # What the draft is: a draft on public services is discussed longer
    # (plugins.consultations.discussion).
    sa.Column(
        "kind",
        sa.String(16),
        nullable=False,
        default="regulatory",
        server_default=sa.text("'regulatory'"),
    ),
    # Tallies change by +1/-1 in SQL in the transaction that changes the vote, so they are exact
    # and a hot read costs one row instead of a count over every vote.
    sa.Column("support_count", sa.Integer, nullable=False, default=0),
    sa.Column("oppose_count", sa.Integer, nullable=False, default=0),
    sa.Column("neutral_count", sa.Integer, nullable=False, default=0),
    sa.Column("comment_count", sa.Integer, nullable=False, default=0),
    sa.Column("report_summary", sa.Text),
    sa.Column("report_published_at", sa.DateTime(timezone=True)),
    # When the close was recorded (by the report or the sweeper): set once, so
    # ``consultation.closed`` fires once. The public status is derived from the times instead.
    sa.Column("close_recorded_at", sa.DateTime(timezone=True)),
    sa.Index("ix_consultations_created", "created_at", "id"),
    sa.Index("ix_consultations_agency_created", "agency", "created_at", "id"),
    sa.Index("ix_consultations_unrecorded_close", "close_recorded_at", "closes_at"),
)

sections = sa.Table(
    "consultation_sections",
    metadata,
    sa.Column(
        "consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), primary_key=True
    ),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("heading", sa.String(300)),
    sa.Column("text", sa.Text, nullable=False),
)

# Hex only, compared byte by byte: PostgreSQL's locale collations would reorder other text.
_THREAD_KEY = sa.String(300).with_variant(sa.String(300, collation="C"), "postgresql")

comments = sa.Table(
    "consultation_comments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), nullable=False),
    sa.Column("section", sa.Integer),
    sa.Column("parent_id", sa.String(32), sa.ForeignKey("consultation_comments.id")),
    sa.Column("depth", sa.Integer, nullable=False),
    # The parent's key followed by this comment's own: ordering by it lists every thread
    # depth-first, oldest first at each level, and it is the keyset cursor of the list.
    sa.Column("thread_key", _THREAD_KEY, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("author_hash", sa.String(64), nullable=False),
    sa.Column("author_name", sa.String(120), nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("hidden_at", sa.DateTime(timezone=True)),
    sa.Column("hidden_reason", sa.Text),
    sa.Column("hidden_by", sa.String(64)),
    sa.Index("ix_comments_thread", "consultation_id", "thread_key", unique=True),
    sa.Index("ix_comments_section_thread", "consultation_id", "section", "thread_key"),
)

votes = sa.Table(
    "consultation_votes",
    metadata,
    sa.Column(
        "consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), primary_key=True
    ),
    # The keyed hash of the voter's IIN: the primary key allows one vote per citizen.
    sa.Column("citizen_hash", sa.String(64), primary_key=True),
    sa.Column("position", sa.String(8), nullable=False),
    sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True)),
)

report_answers = sa.Table(
    "consultation_report_answers",
    metadata,
    sa.Column(
        "consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), primary_key=True
    ),
    sa.Column(
        "comment_id", sa.String(32), sa.ForeignKey("consultation_comments.id"), primary_key=True
    ),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
)

# What each version created, frozen: a change to the tables above is a new version, and these
# are never edited (core.storage.migrations says why). Only DDL matters here, so Python-side
# defaults are left out.
_version_1 = sa.MetaData()
sa.Table(
    "consultations",
    _version_1,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("agency", sa.String(64), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("support_count", sa.Integer, nullable=False),
    sa.Column("oppose_count", sa.Integer, nullable=False),
    sa.Column("neutral_count", sa.Integer, nullable=False),
    sa.Column("comment_count", sa.Integer, nullable=False),
    sa.Column("report_summary", sa.Text),
    sa.Column("report_published_at", sa.DateTime(timezone=True)),
    sa.Column("close_recorded_at", sa.DateTime(timezone=True)),
    sa.Index("ix_consultations_created", "created_at", "id"),
    sa.Index("ix_consultations_agency_created", "agency", "created_at", "id"),
    sa.Index("ix_consultations_unrecorded_close", "close_recorded_at", "closes_at"),
)
sa.Table(
    "consultation_sections",
    _version_1,
    sa.Column(
        "consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), primary_key=True
    ),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("heading", sa.String(300)),
    sa.Column("text", sa.Text, nullable=False),
)
sa.Table(
    "consultation_comments",
    _version_1,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), nullable=False),
    sa.Column("section", sa.Integer),
    sa.Column("parent_id", sa.String(32), sa.ForeignKey("consultation_comments.id")),
    sa.Column("depth", sa.Integer, nullable=False),
    sa.Column(
        "thread_key",
        sa.String(300).with_variant(sa.String(300, collation="C"), "postgresql"),
        nullable=False,
    ),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("author_hash", sa.String(64), nullable=False),
    sa.Column("author_name", sa.String(120), nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("hidden_at", sa.DateTime(timezone=True)),
    sa.Column("hidden_reason", sa.Text),
    sa.Column("hidden_by", sa.String(64)),
    sa.Index("ix_comments_thread", "consultation_id", "thread_key", unique=True),
    sa.Index("ix_comments_section_thread", "consultation_id", "section", "thread_key"),
)
sa.Table(
    "consultation_votes",
    _version_1,
    sa.Column(
        "consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), primary_key=True
    ),
    sa.Column("citizen_hash", sa.String(64), primary_key=True),
    sa.Column("position", sa.String(8), nullable=False),
    sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True)),
)
sa.Table(
    "consultation_report_answers",
    _version_1,
    sa.Column(
        "consultation_id", sa.String(32), sa.ForeignKey("consultations.id"), primary_key=True
    ),
    sa.Column(
        "comment_id", sa.String(32), sa.ForeignKey("consultation_comments.id"), primary_key=True
    ),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
)


async def _version_2_kind(conn: AsyncConnection) -> None:
    await conn.exec_driver_sql(
        "ALTER TABLE consultations ADD COLUMN kind VARCHAR(16) DEFAULT 'regulatory' NOT NULL"
    )


MIGRATIONS = MigrationSet(
    namespace="consultations",
    migrations=[
        Migration(
            version=1,
            description="consultations, their sections, comments, votes and report answers",
            upgrade=create_tables(*_version_1.sorted_tables),
        ),
        Migration(
            version=2,
            description="the kind of draft, which sets the minimum discussion",
            upgrade=_version_2_kind,
        ),
    ],
)
