"""The map: where a petition's signatures come from, by region of the register.

A signature records its signer's region only when the identity provider vouches for one (the
claim ``identity.region_claim`` names) and the jurisdiction's register knows the code; the
region is never derived from the national identifier. Every published count is at least
``region_minimum``: smaller regions are merged into ``other``, so that no small count points at
a person.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from plugins.petitions.tables import signatures

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from core.sdk import Identity, Jurisdiction

OTHER = "other"
UNKNOWN = None


def signer_region(identity: Identity, jurisdiction: Jurisdiction) -> str | None:
    """The signer's region code when the identity provider gave one the register knows."""
    region = identity.region
    return region if region is not None and jurisdiction.region(region) is not None else None


async def region_counts(conn: AsyncConnection, petition_id: str) -> dict[str | None, int]:
    """Signatures by region code (None: no region recorded)."""
    rows = await conn.execute(
        sa.select(signatures.c.region, sa.func.count())
        .where(signatures.c.petition_id == petition_id)
        .group_by(signatures.c.region)
    )
    return {row[0]: int(row[1]) for row in rows}


def region_document(
    petition_id: str, counts: dict[str | None, int], minimum: int, jurisdiction: Jurisdiction
) -> dict[str, Any]:
    """Counts per region at or above ``minimum``, largest first; the rest (and signatures with
    no region) summed in ``other``."""
    shown: list[dict[str, Any]] = []
    other = 0
    for code, count in counts.items():
        if code is None or count < minimum:
            other += count
            continue
        region = jurisdiction.region(code)
        names = dict(region.names) if region is not None else None
        shown.append({"code": code, "names": names, "signatures": count})
    shown.sort(key=lambda item: (-item["signatures"], item["code"]))
    return {
        "petition_id": petition_id,
        "minimum": minimum,
        "regions": shown,
        OTHER: other,
        "total": sum(counts.values()),
    }


def region_csv(document: dict[str, Any]) -> bytes:
    """The same figures as ``region_document``, one region a row, ``other`` last."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["region", "name_kk", "name_ru", "name_en", "signatures"])
    for item in document["regions"]:
        names = item["names"] or {}
        writer.writerow(
            [
                item["code"],
                names.get("kk", ""),
                names.get("ru", ""),
                names.get("en", ""),
                item["signatures"],
            ]
        )
    writer.writerow([OTHER, "", "", "", document[OTHER]])
    return out.getvalue().encode()
