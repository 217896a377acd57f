"""A live stream on a real listening server: the connection guard's head timeout spares it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from core.host.server import RunningServer, start_server
from tests.support.identities import citizen, moderator
from tests.support.live import EventReader
from tests.support.petitions import BASE, PETITION, SMALL_FIGURES, SMALL_THRESHOLDS


@pytest.fixture
async def serve(make_settings) -> AsyncIterator[Callable[..., object]]:
    running: list[RunningServer] = []

    async def start(**server: object) -> RunningServer:
        settings = make_settings(
            server={"port": 0, **server},
            admission={"enabled": True},
            kazakhstan=SMALL_THRESHOLDS,
            petitions={**SMALL_FIGURES, "live_heartbeat_seconds": 0.2},
        )
        instance = await start_server(settings)
        running.append(instance)
        return instance

    yield start
    for instance in running:
        await instance.drain()


async def test_a_stream_outlives_the_head_timeout_of_its_connection(serve) -> None:
    server = await serve(header_timeout=0.3)
    base = f"http://127.0.0.1:{server.port}{BASE}"
    async with aiohttp.ClientSession() as session:
        filed = await session.post(base, json=PETITION, headers=citizen(1))
        petition_id = (await filed.json())["id"]
        approved = await session.post(
            f"{base}/{petition_id}/moderation", json={"decision": "approve"}, headers=moderator()
        )
        assert approved.status == 200
        response = await session.get(f"{base}/{petition_id}/live")
        reader = EventReader(response)
        assert (await reader.next_named("count")) is not None

        beats = [await reader.next(within=2.0) for _ in range(6)]
        response.close()

    # Six heartbeats, 1.2 s: four head timeouts would have cut the connection.
    assert [beat.name if beat else None for beat in beats] == ["comment"] * 6
