from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa

from core.identity import keys as identity_keys
from plugins.consultations.tables import votes
from plugins.kazakhstan.iin import synthetic_iin
from tests.support.consultations import BASE, window
from tests.support.identities import agency, citizen, moderator
from tests.support.problems import problem


async def test_a_first_vote_is_201_and_counted(client, open_consultation, read, vote) -> None:
    consultation = await open_consultation(client)
    response = await vote(client, consultation["id"], 1, "support")
    assert response.status == 201
    assert await response.json() == {
        "consultation_id": consultation["id"],
        "position": "support",
        "changed": False,
        "votes": {"support": 1, "oppose": 0, "neutral": 0},
    }
    assert (await read(client, consultation["id"]))["votes"] == {
        "support": 1,
        "oppose": 0,
        "neutral": 0,
    }


async def test_voting_again_changes_the_vote_and_keeps_tallies_exact(
    client, fetch_rows, open_consultation, read, vote
) -> None:
    consultation = await open_consultation(client)
    cid = consultation["id"]
    await vote(client, cid, 1, "support")
    await vote(client, cid, 2, "support")
    changed = await vote(client, cid, 1, "oppose")
    assert changed.status == 200
    assert await changed.json() == {
        "consultation_id": cid,
        "position": "oppose",
        "changed": True,
        "votes": {"support": 1, "oppose": 1, "neutral": 0},
    }
    same = await vote(client, cid, 1, "oppose")
    assert same.status == 200
    assert (await same.json())["changed"] is False
    assert (await read(client, cid))["votes"] == {"support": 1, "oppose": 1, "neutral": 0}
    rows = await fetch_rows(client, sa.select(votes.c.position).order_by(votes.c.position))
    assert [row.position for row in rows] == ["oppose", "support"]


async def test_twenty_citizens_voting_at_once_give_exact_tallies(
    client, fetch_rows, open_consultation, read, vote
) -> None:
    consultation = await open_consultation(client)
    positions = ["support"] * 9 + ["oppose"] * 7 + ["neutral"] * 4
    responses = await asyncio.gather(
        *(
            vote(client, consultation["id"], n, position)
            for n, position in enumerate(positions, start=1)
        )
    )
    assert [r.status for r in responses] == [201] * 20
    assert (await read(client, consultation["id"]))["votes"] == {
        "support": 9,
        "oppose": 7,
        "neutral": 4,
    }
    assert len(await fetch_rows(client, sa.select(votes))) == 20


async def test_concurrent_changes_and_repeats_keep_tallies_exact(
    client, open_consultation, read, vote
) -> None:
    consultation = await open_consultation(client)
    cid = consultation["id"]
    for n in range(1, 11):
        await vote(client, cid, n, "support")
    responses = await asyncio.gather(
        *(vote(client, cid, n, "neutral") for n in range(1, 11)),
        *(vote(client, cid, n, "neutral") for n in range(1, 6)),
    )
    assert sorted(r.status for r in responses) == [200] * 15
    assert (await read(client, cid))["votes"] == {"support": 0, "oppose": 0, "neutral": 10}


async def test_a_bad_position_is_422(client, open_consultation, vote) -> None:
    consultation = await open_consultation(client)
    response = await vote(client, consultation["id"], 1, "maybe")
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["position"]


@pytest.mark.parametrize("headers", [moderator(), agency()])
async def test_only_citizens_vote(client, headers, open_consultation) -> None:
    consultation = await open_consultation(client)
    response = await client.post(
        f"{BASE}/{consultation['id']}/votes", json={"position": "support"}, headers=headers
    )
    assert response.status == 403


async def test_voting_needs_a_token(client, open_consultation) -> None:
    consultation = await open_consultation(client)
    response = await client.post(f"{BASE}/{consultation['id']}/votes", json={"position": "support"})
    assert response.status == 401


@pytest.mark.parametrize("admission", [False, True], ids=["admission-off", "admission-on"])
async def test_put_on_votes_is_a_405_problem_allowing_post_and_counts_nothing(
    make_client, database_url, admission, open_consultation, read
) -> None:
    client = await make_client(database_url, admission={"enabled": admission})
    consultation = await open_consultation(client)

    response = await client.put(
        f"{BASE}/{consultation['id']}/votes", json={"position": "support"}, headers=citizen(1)
    )

    body = await problem(response, 405)
    assert body["type"] == "/problems/method-not-allowed"
    assert response.headers["Allow"] == "POST"
    assert (await read(client, consultation["id"]))["votes"] == {
        "support": 0,
        "oppose": 0,
        "neutral": 0,
    }


async def test_voting_on_an_unknown_consultation_is_404(client, vote) -> None:
    assert (await vote(client, "nope", 1, "support")).status == 404


async def test_votes_before_the_consultation_opens_are_409(client, open_consultation, vote) -> None:
    consultation = await open_consultation(client, **window(opens_in=dt.timedelta(days=1)))
    response = await vote(client, consultation["id"], 1, "support")
    assert response.status == 409
    assert (await response.json())["consultation_status"] == "upcoming"


async def test_votes_after_the_closing_time_are_409_and_change_nothing(
    client, close_by_deadline, fetch_rows, open_consultation, read, vote
) -> None:
    consultation = await open_consultation(client)
    await vote(client, consultation["id"], 1, "support")
    await close_by_deadline(client, consultation["id"])
    assert (await vote(client, consultation["id"], 1, "oppose")).status == 409
    assert (await vote(client, consultation["id"], 2, "oppose")).status == 409
    assert (await read(client, consultation["id"]))["votes"] == {
        "support": 1,
        "oppose": 0,
        "neutral": 0,
    }
    assert [r.position for r in await fetch_rows(client, sa.select(votes))] == ["support"]


async def test_a_vote_stores_the_keyed_hash_never_the_iin(
    client, fetch_rows, open_consultation, vote
) -> None:
    consultation = await open_consultation(client)
    await vote(client, consultation["id"], 3, "neutral")
    [row] = await fetch_rows(client, sa.select(votes))
    assert synthetic_iin(3) not in " ".join(str(value) for value in row)
    assert row.citizen_hash == client.app[identity_keys.VERIFIER].citizen_hash(synthetic_iin(3))
