"""A flood of valid signatures with poisoned items interleaved: every valid one is 201, once.

On PostgreSQL a single NUL in a signing batch used to fail the whole batch's transaction: six
``POST /api/v1/petitions/%00/signatures`` in a burst cost 566 of 600 valid signatures a 503.
Two defences are tested together: the boundary refuses NUL before anything is batched, and a
poisoned item that reaches a batch anyway (put there directly, past the boundary) fails alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from aiohttp import TCPConnector

from core.clock import utcnow
from core.host.app import create_app
from core.storage import keys as storage_keys
from core.wire.errors import NotFound, ServiceUnavailable
from plugins.petitions.signing import SignRequest
from plugins.petitions.state import STATE
from plugins.petitions.tables import signatures
from tests.support.identities import citizen
from tests.support.storage import Gate

VALID = 240
POISONED_REQUESTS = 24
POISONED_ITEMS = 24


async def test_poisoned_items_interleaved_in_a_signing_flood_fail_alone(
    aiohttp_client: Any, make_settings: Any, database_url: str, approved_petition, read_back, sign
) -> None:
    settings = make_settings(database_url, writer={"max_batch": 1024})
    # No connection limit: the whole flood must be in flight at once to share one batch.
    client = await aiohttp_client(create_app(settings), connector=TCPConnector(limit=0))
    petition = await approved_petition(client)
    app = client.server.app
    writer = app[storage_keys.WRITER]
    channel = app[STATE]
    gate = Gate()
    held = asyncio.create_task(writer.submit(gate))
    await gate.entered.wait()

    async def poisoned_request(n: int) -> Any:
        return await client.post(
            f"/api/v1/petitions/%00{n}/signatures", headers=citizen(VALID + n + 1)
        )

    async def poisoned_item(n: int) -> Any:
        now = utcnow()
        return await writer.submit_batched(
            channel.signing, SignRequest(f"\x00{n}", f"poison-{n}", "Poison P.", now)
        )

    flood: list[asyncio.Task[Any]] = []
    kinds: list[str] = []
    for n in range(1, VALID + 1):
        flood.append(asyncio.create_task(sign(client, petition["id"], n)))
        kinds.append("valid")
        if n % 10 == 0:
            flood.append(asyncio.create_task(poisoned_request(n)))
            kinds.append("request")
            flood.append(asyncio.create_task(poisoned_item(n)))
            kinds.append("item")
    # The refused requests never queue; the valid ones and the items past the boundary do.
    await until(lambda: writer.queue_length == VALID + POISONED_ITEMS)
    gate.released.set()
    await held
    outcomes = await asyncio.gather(*flood, return_exceptions=True)

    valid = [o for o, k in zip(outcomes, kinds, strict=True) if k == "valid"]
    assert sorted([r.status for r in valid]) == [201] * VALID
    counts = sorted([(await r.json())["signature_count"] for r in valid])
    assert counts[-1] == VALID
    for response in (o for o, k in zip(outcomes, kinds, strict=True) if k == "request"):
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == "id"
    items = [o for o, k in zip(outcomes, kinds, strict=True) if k == "item"]
    assert len(items) == POISONED_ITEMS
    for item in items:
        # PostgreSQL refuses the NUL, so the item's own batch fails and only it is told so;
        # SQLite stores NUL, so the lookup simply finds no such petition.
        expected = ServiceUnavailable if "postgresql" in database_url else NotFound
        assert type(item) is expected, repr(item)
    assert (await read_back(client, petition["id"]))["signature_count"] == VALID
    async with app[storage_keys.DATABASE].read() as conn:
        stored = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(signatures)
            .where(signatures.c.petition_id == petition["id"])
        )
    assert stored == VALID


async def until(condition: Any) -> None:
    for _ in range(3_000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never became true")
