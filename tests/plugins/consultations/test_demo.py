from __future__ import annotations

from plugins.consultations.demo import DEMO_ID, seed_consultation
from tests.support.consultations import BASE


async def test_the_demo_seed_is_an_open_consultation_with_a_thread_and_votes(client, read) -> None:
    lines = await seed_consultation(client.app)
    assert lines == [
        "consultations: 1 demo consultation seeded",
        f"  demo consultation id: {DEMO_ID}",
    ]
    consultation = await read(client, DEMO_ID)
    assert consultation["status"] == "open"
    assert [s["number"] for s in consultation["sections"]] == [1, 2, 3, 4]
    assert consultation["votes"] == {"support": 3, "oppose": 1, "neutral": 1}
    assert consultation["comment_count"] == 4
    listed = await (await client.get(f"{BASE}/{DEMO_ID}/comments")).json()
    assert [(c["depth"], c["parent_id"]) for c in listed["items"]] == [
        (1, None),
        (2, "d0000000000000a1"),
        (1, None),
        (1, None),
    ]


async def test_the_demo_seed_runs_twice_without_duplicating(client, read) -> None:
    await seed_consultation(client.app)
    again = await seed_consultation(client.app)
    assert again[0] == "consultations: demo data present"
    assert (await read(client, DEMO_ID))["comment_count"] == 4
