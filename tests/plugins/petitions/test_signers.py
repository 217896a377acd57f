"""The public signer list: keyset pages under a sealed cursor that cannot be forged or read."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from core.storage import keys as storage_keys
from core.wire.paging import encode_cursor
from plugins.petitions.tables import signatures
from tests.support.identities import citizen
from tests.support.petitions import petition_url
from tests.support.problems import problem

FOREIGN_CURSOR = "the cursor is not one this server issued"


async def sign_as(client: Any, petition_id: str, numbers: range) -> None:
    for n in numbers:
        response = await client.post(
            petition_url(petition_id, "/signatures"), headers=citizen(n, name=f"Signer{n} Test")
        )
        assert response.status == 201, await response.text()


async def every_page(client: Any, petition_id: str, limit: int) -> list[dict[str, Any]]:
    pages, cursor = [], None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(petition_url(petition_id, "/signatures") + query)
        assert response.status == 200, await response.text()
        page = await response.json()
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "the cursor does not advance"


async def test_following_the_cursor_lists_every_signer_once_in_signing_order(
    client: Any, approved_petition
) -> None:
    petition = await approved_petition(client)
    await sign_as(client, petition["id"], range(10, 15))
    pages = await every_page(client, petition["id"], limit=2)
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    names = [item["name"] for page in pages for item in page["items"]]
    assert names == [f"Signer{n} T." for n in range(10, 15)]


async def test_signers_signed_at_the_same_instant_are_each_listed_once(
    client: Any, approved_petition, execute
) -> None:
    petition = await approved_petition(client)
    instant = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    rows = [
        {"petition_id": petition["id"], "citizen_hash": f"{n:064x}", "public_name": f"Same {n}."}
        for n in range(7)
    ]
    await execute(client, sa.insert(signatures).values([{**r, "signed_at": instant} for r in rows]))
    pages = await every_page(client, petition["id"], limit=3)
    names = [item["name"] for page in pages for item in page["items"]]
    assert names == [f"Same {n}." for n in range(7)]


async def test_a_cursor_carries_no_signer_hash_in_clear(
    client: Any, approved_petition, signature_hashes
) -> None:
    petition = await approved_petition(client)
    await sign_as(client, petition["id"], range(20, 23))
    [first, *_] = await every_page(client, petition["id"], limit=1)
    cursor = first["next_cursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    for signer_hash in await signature_hashes(client, petition["id"]):
        assert signer_hash.encode() not in raw
        assert bytes.fromhex(signer_hash) not in raw


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor([1]),  # an offset, as this list's cursor was
        encode_cursor([10**9]),  # an offset deep enough to scan the whole table
        encode_cursor(["2026-01-01T00:00:00Z", "0" * 64]),  # a position in clear
        "not a cursor!",
        "A" * 60,  # long enough to hold a nonce and a tag, sealed with no key of ours
        "",
    ],
)
async def test_a_forged_cursor_is_400_before_any_query(
    client: Any, approved_petition, cursor: str
) -> None:
    petition = await approved_petition(client)
    statements = record_statements(client)
    response = await client.get(petition_url(petition["id"], "/signatures") + f"?cursor={cursor}")
    assert (await problem(response, 400))["detail"] == FOREIGN_CURSOR
    assert statements == []


async def test_a_cursor_of_another_petition_is_400(client: Any, approved_petition) -> None:
    one = await approved_petition(client)
    other = await approved_petition(client, title="Another footpath along the river")
    await sign_as(client, one["id"], range(30, 33))
    await sign_as(client, other["id"], range(30, 33))
    [first, *_] = await every_page(client, one["id"], limit=1)
    response = await client.get(
        petition_url(other["id"], "/signatures") + f"?cursor={first['next_cursor']}"
    )
    assert (await problem(response, 400))["detail"] == FOREIGN_CURSOR


async def test_a_deep_page_is_a_seek_after_the_last_signer_never_an_offset(
    client: Any, approved_petition
) -> None:
    petition = await approved_petition(client)
    await sign_as(client, petition["id"], range(40, 43))
    [first, *_] = await every_page(client, petition["id"], limit=1)
    statements = record_statements(client)
    response = await client.get(
        petition_url(petition["id"], "/signatures") + f"?limit=1&cursor={first['next_cursor']}"
    )
    assert response.status == 200
    [(listing, parameters)] = [(s, p) for s, p in statements if "petition_signatures" in s]
    assert "petition_signatures.signed_at >=" in listing
    if "OFFSET" in listing:  # SQLite's dialect writes one with every LIMIT: it must be 0
        assert listing.endswith("LIMIT ? OFFSET ?")
        assert parameters[-1] == 0


def record_statements(client: Any) -> list[tuple[str, Any]]:
    """Every SQL statement the app's engine runs from now on, with its parameters."""
    statements: list[tuple[str, Any]] = []
    engine = client.app[storage_keys.DATABASE].engine.sync_engine

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    return statements
