"""Full-text search over petition titles and texts, on SQLite and on PostgreSQL.

The index lives in a table of its own, filled by triggers when a petition is filed (its title
and text never change after that): signing updates a petition's row many times a second, and
an index on the row itself would re-tokenise up to 20,000 characters of text on each update.

SQLite keeps an FTS5 table and ranks with ``bm25``; PostgreSQL keeps a ``tsvector`` with a GIN
index and ranks with ``ts_rank``, with the ``simple`` configuration because Kazakh has no
stemmer there; the title weighs more than the text on both. The table and its triggers are made
by the channel's migrations (``plugins.petitions.tables``, version 3).

A user's query is reduced to its words before either database sees it, so quotes, ``*``,
brackets and ``AND``/``OR``/``NEAR`` are never parsed as query syntax: every word must match.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from plugins.petitions.tables import petitions

_WORD = re.compile(r"\w+")
MAX_TERMS = 16
FTS_TABLE = "petitions_fts"
VECTOR_TABLE = "petitions_search"


def search_terms(text: str) -> list[str]:
    """The words of a search query, without any character a search syntax could read."""
    return _WORD.findall(text)[:MAX_TERMS]


def matching(query: sa.Select[Any], dialect: str, terms: list[str]) -> sa.Select[Any]:
    """``query`` over ``petitions`` kept to the rows matching every term, best match first."""
    if dialect == "sqlite":
        fts = sa.table(FTS_TABLE, sa.column("petition_id"))
        table: sa.ColumnElement[Any] = sa.literal_column(FTS_TABLE)
        # Each term is a quoted FTS5 string, so even a bare AND, OR, NOT or NEAR is a word.
        expression = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
        # bm25 is lower for better matches; the weights follow the columns (id, title, text).
        return (
            query.join(fts, fts.c.petition_id == petitions.c.id)
            .where(table.op("MATCH", is_comparison=True)(expression))
            .order_by(sa.func.bm25(table, 0.0, 4.0, 1.0))
        )
    if dialect == "postgresql":
        search = sa.table(VECTOR_TABLE, sa.column("petition_id"), sa.column("document"))
        tsquery = sa.func.plainto_tsquery(sa.literal_column("'simple'::regconfig"), " ".join(terms))
        document: sa.ColumnElement[Any] = search.c.document
        return (
            query.join(search, search.c.petition_id == petitions.c.id)
            .where(document.op("@@", is_comparison=True)(tsquery))
            .order_by(sa.func.ts_rank(document, tsquery).desc())
        )
    raise ValueError(f"no full-text search for the {dialect!r} database")
