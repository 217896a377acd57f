"""The information channel's tables and migrations."""

from __future__ import annotations

import sqlalchemy as sa

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
