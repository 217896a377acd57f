"""The petition list's public counts as CSV, for spreadsheets and data journalists.

One row per petition, the columns of ``COLUMNS``: what anyone can already read on the list,
without the texts. A title is a citizen's words, so one that a spreadsheet would read as a
formula (``=``, ``+``, ``-``, ``@``, a tab or a carriage return first) gets a leading ``'``.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from core.sdk import iso

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Row

CSV_MEDIA_TYPE = "text/csv"
COLUMNS = (
    "id",
    "title",
    "addressee",
    "status",
    "signature_count",
    "threshold",
    "created_at",
    "threshold_reached_at",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def counts_csv(rows: Iterable[Row[Any]]) -> str:
    """The rows' public counts as CSV (RFC 4180: CRLF line ends), with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            (
                row.id,
                _inert(row.title),
                row.addressee,
                row.status,
                row.signature_count,
                row.threshold,
                iso(row.created_at),
                iso(row.threshold_reached_at) or "",
            )
        )
    return out.getvalue()


def _inert(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
