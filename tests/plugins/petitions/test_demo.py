"""The demo seed: one petition in each of five states, seeded once."""

from __future__ import annotations

import sqlalchemy as sa

from core.host.app import create_app
from core.storage import keys as storage_keys
from plugins.petitions.demo import seed_petitions
from plugins.petitions.tables import petitions, signatures
from tests.support.petitions import BASE, petition_url


async def _stored(client) -> tuple[dict[str, str], int]:
    async with client.app[storage_keys.DATABASE].read() as conn:
        statuses = {
            row.id: row.status
            for row in await conn.execute(sa.select(petitions.c.id, petitions.c.status))
        }
        rows = await conn.scalar(sa.select(sa.func.count()).select_from(signatures))
    return statuses, rows


async def test_the_demo_seeds_five_petitions_in_five_states(client) -> None:
    lines = await seed_petitions(client.app)

    statuses, rows = await _stored(client)
    assert statuses == {
        "demo-moderation": "moderation",
        "demo-restricted": "restricted",
        "demo-public": "public",
        "demo-awaiting": "awaiting_response",
        "demo-answered": "answered",
    }
    assert lines == [
        "petitions: 5 demo petitions seeded",
        "  demo petition ids: demo-moderation, demo-restricted, demo-public, demo-awaiting,"
        " demo-answered",
        "  try: curl -s http://HOST/api/v1/petitions?sort=signatures",
        "  and, with a citizen token in $CITIZEN:",
        '    curl -s -X POST -H "Authorization: Bearer $CITIZEN" '
        "http://HOST/api/v1/petitions/demo-public/signatures",
    ]
    async with client.app[storage_keys.DATABASE].read() as conn:
        counts = dict(
            (await conn.execute(sa.select(petitions.c.id, petitions.c.signature_count))).all()
        )
        per_petition = dict(
            (
                await conn.execute(
                    sa.select(signatures.c.petition_id, sa.func.count()).group_by(
                        signatures.c.petition_id
                    )
                )
            ).all()
        )
    assert {pid: n for pid, n in counts.items() if n} == per_petition
    assert rows == sum(counts.values())


async def test_seeding_the_demo_twice_seeds_nothing_more(client) -> None:
    await seed_petitions(client.app)
    first = await _stored(client)

    lines = await seed_petitions(client.app)

    assert await _stored(client) == first
    assert lines[0] == "petitions: demo data present"


async def test_demo_petitions_are_served_by_the_api(client) -> None:
    await seed_petitions(client.app)

    listed = await (await client.get(BASE)).json()
    answered = await (await client.get(petition_url("demo-answered"))).json()

    assert {item["id"] for item in listed["items"]} == {
        "demo-public",
        "demo-awaiting",
        "demo-answered",
    }
    assert answered["response"]["agency"] == "karaganda-city-maslikhat"
    assert (await client.get(petition_url("demo-moderation"))).status == 404
    restricted = await (await client.get(petition_url("demo-restricted"))).json()
    # The Astana maslikhat's threshold is 2% of Astana's configured population, rounded up.
    assert restricted["addressee"] == "astana-maslikhat"
    assert restricted["threshold"] == 32_765


async def test_without_the_demo_agencies_in_the_register_the_demo_seeds_nothing(
    aiohttp_client, make_settings
) -> None:
    settings = make_settings(kazakhstan={"agencies": {}})
    client = await aiohttp_client(create_app(settings))

    lines = await seed_petitions(client.app)

    assert lines == [
        "petitions: no demo data, the register lacks almaty-bostandyq-akimat, "
        "astana-maslikhat, government, karaganda-city-maslikhat"
    ]
    assert await _stored(client) == ({}, 0)
