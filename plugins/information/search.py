"""Full-text search over published items: one interface, one implementation per database.

SQLite uses an FTS5 index kept in step with ``information_items`` by triggers and ranks with
``bm25``; PostgreSQL uses a generated ``tsvector`` column with a GIN index and ranks with
``ts_rank``. Both index the title, the body and every translation, with the ``simple``
configuration on PostgreSQL because Kazakh has no stemmer there. The index, its triggers and
the column are made by the channel's migrations (``plugins.information.tables``).

A user's query is reduced to its words before either database sees it, so quotes, ``*``,
brackets and ``AND``/``OR``/``NEAR`` are never parsed as query syntax: every word must match.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from plugins.information.tables import items

if TYPE_CHECKING:
    from collections.abc import Sequence

_WORD = re.compile(r"\w+")
MAX_TERMS = 16


def search_terms(text: str) -> list[str]:
    """The words of a search query, without any character a search syntax could read."""
    return _WORD.findall(text)[:MAX_TERMS]


class SearchBackend(Protocol):
    def apply(self, query: sa.Select[Any], terms: Sequence[str]) -> sa.Select[Any]:
        """Keep the items matching every term, best match first."""


_FTS = "information_items_fts"


class Fts5Search:
    """SQLite: an external-content FTS5 table, so the text is stored once."""

    def apply(self, query: sa.Select[Any], terms: Sequence[str]) -> sa.Select[Any]:
        fts = sa.table(_FTS, sa.column("rowid"))
        # Each term is a quoted FTS5 string, so even a bare AND, OR, NOT or NEAR is a word.
        expression = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
        table: sa.ColumnElement[Any] = sa.literal_column(_FTS)
        # bm25 is lower for better matches; a word in the title weighs more than in a body.
        return (
            query.join(fts, fts.c.rowid == items.c.seq)
            .where(table.op("MATCH", is_comparison=True)(expression))
            .order_by(sa.func.bm25(table, 4.0, 1.0, 1.0))
        )


class TsvectorSearch:
    """PostgreSQL: a stored generated ``tsvector`` column with a GIN index."""

    def apply(self, query: sa.Select[Any], terms: Sequence[str]) -> sa.Select[Any]:
        vector: sa.ColumnElement[Any] = sa.literal_column(f"{items.name}.search_vector")
        tsquery = sa.func.plainto_tsquery(sa.literal_column("'simple'::regconfig"), " ".join(terms))
        return query.where(vector.op("@@", is_comparison=True)(tsquery)).order_by(
            sa.func.ts_rank(vector, tsquery).desc()
        )


_BACKENDS: dict[str, SearchBackend] = {"sqlite": Fts5Search(), "postgresql": TsvectorSearch()}


def backend_for(dialect: str) -> SearchBackend:
    """The search backend of a database dialect (``conn.dialect.name``)."""
    try:
        return _BACKENDS[dialect]
    except KeyError:
        raise ValueError(f"no full-text search for the {dialect!r} database") from None
