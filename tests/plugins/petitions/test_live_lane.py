"""Live streams the fast lane opens: the first event without aiohttp, then the stream as usual."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from core.host.server import RunningServer, start_server
from plugins.petitions.state import STATE
from tests.support.identities import citizen, moderator
from tests.support.live import EventReader
from tests.support.petitions import BASE, PETITION, SMALL_FIGURES
from tests.support.raw_http import LaneLog, connect, request

# Headers whose values differ between any two answers, lane or not.
PER_ANSWER = {"Date", "X-Request-Id", "RateLimit"}


@pytest.fixture
async def serve(make_settings) -> AsyncIterator[Callable[..., Any]]:
    running: list[RunningServer] = []

    async def start(**petitions: object) -> RunningServer:
        settings = make_settings(
            server={"port": 0, "access_log": True},
            admission={"enabled": True},
            petitions={**SMALL_FIGURES, "live_interval_seconds": 0.1, **petitions},
        )
        instance = await start_server(settings)
        running.append(instance)
        return instance

    yield start
    for instance in running:
        await instance.drain()


async def approved(session: aiohttp.ClientSession, base: str) -> str:
    filed = await session.post(base, json=PETITION, headers=citizen(1))
    petition_id: str = (await filed.json())["id"]
    answer = await session.post(
        f"{base}/{petition_id}/moderation", json={"decision": "approve"}, headers=moderator()
    )
    assert answer.status == 200
    return petition_id


def opened_by_lane(lane_log: LaneLog) -> int:
    return lane_log.streams


async def test_a_second_watcher_gets_its_stream_from_the_lane_as_the_ordinary_path_would(
    serve,
    lane_log: LaneLog,
) -> None:
    server = await serve()
    base = f"http://127.0.0.1:{server.port}{BASE}"
    async with aiohttp.ClientSession() as session, aiohttp.ClientSession() as fresh:
        petition_id = await approved(session, base)
        ordinary = await session.get(f"{base}/{petition_id}/live")
        first_reader = EventReader(ordinary)
        assert (await first_reader.next_named("count")) is not None
        assert opened_by_lane(lane_log) == 0

        laned = await fresh.get(f"{base}/{petition_id}/live")
        assert opened_by_lane(lane_log) == 1
        reader = EventReader(laned)
        hint = await reader.next()
        first = await reader.next()

        assert laned.status == ordinary.status == 200
        assert {k: v for k, v in laned.headers.items() if k not in PER_ANSWER} == {
            k: v for k, v in ordinary.headers.items() if k not in PER_ANSWER
        }
        assert set(laned.headers) == set(ordinary.headers)
        assert hint is not None
        assert hint.retry is not None
        assert first is not None
        assert first.name == "count"
        assert first.data == {
            "petition_id": petition_id,
            "signature_count": 0,
            "status": "restricted",
        }
        assert server.app[STATE].live.open == 2

        signed = await session.post(f"{base}/{petition_id}/signatures", headers=citizen(2))
        assert signed.status == 201
        later = await reader.next_named("count")
        assert later is not None
        assert later.data["signature_count"] == 1
        ordinary.close()
        laned.close()


async def test_a_watcher_that_leaves_a_lane_stream_frees_its_place_at_once(
    serve, lane_log: LaneLog
) -> None:
    server = await serve()
    base = f"http://127.0.0.1:{server.port}{BASE}"
    hub = server.app[STATE].live
    async with aiohttp.ClientSession() as session, aiohttp.ClientSession() as fresh:
        petition_id = await approved(session, base)
        ordinary = await session.get(f"{base}/{petition_id}/live")
        assert (await EventReader(ordinary).next_named("count")) is not None
        laned = await fresh.get(f"{base}/{petition_id}/live")
        assert (await EventReader(laned).next_named("count")) is not None
        assert opened_by_lane(lane_log) == 1
        assert hub.open == 2

        laned.close()
        for _ in range(100):
            if hub.open == 1:
                break
            await asyncio.sleep(0.02)

        assert hub.open == 1
        assert len(hub.topics[petition_id].subscribers) == 1
        ordinary.close()


async def test_a_lane_stream_ends_with_the_shutdown_event_when_the_server_drains(
    serve, lane_log: LaneLog
) -> None:
    server = await serve()
    base = f"http://127.0.0.1:{server.port}{BASE}"
    async with aiohttp.ClientSession() as session, aiohttp.ClientSession() as fresh:
        petition_id = await approved(session, base)
        ordinary = await session.get(f"{base}/{petition_id}/live")
        assert (await EventReader(ordinary).next_named("count")) is not None
        laned = await fresh.get(f"{base}/{petition_id}/live")
        reader = EventReader(laned)
        assert (await reader.next_named("count")) is not None
        assert opened_by_lane(lane_log) == 1

        drained = asyncio.ensure_future(server.drain())
        last = await reader.next_named("shutdown")
        end = await reader.next()
        await drained

    assert last is not None
    assert last.name == "shutdown"
    assert end is None


async def test_a_bad_last_event_id_and_an_unwatched_petition_take_the_ordinary_path(
    serve,
    lane_log: LaneLog,
) -> None:
    server = await serve()
    base = f"http://127.0.0.1:{server.port}{BASE}"
    async with aiohttp.ClientSession() as session:
        petition_id = await approved(session, base)
        unwatched = await session.get(f"{base}/{petition_id}/live")
        assert (await EventReader(unwatched).next_named("count")) is not None
        assert opened_by_lane(lane_log) == 0

        refused = await session.get(f"{base}/{petition_id}/live", headers={"Last-Event-ID": "x"})
        missing = await session.get(f"{base}/no-such-petition/live")

        assert refused.status == 422
        assert missing.status == 404
        assert opened_by_lane(lane_log) == 0
        unwatched.close()


async def test_a_stream_asked_on_a_connection_aiohttp_served_takes_the_ordinary_path(
    serve,
    lane_log: LaneLog,
) -> None:
    server = await serve()
    base = f"http://127.0.0.1:{server.port}{BASE}"
    async with aiohttp.ClientSession() as session:
        petition_id = await approved(session, base)
        watched = await session.get(f"{base}/{petition_id}/live")
        assert (await EventReader(watched).next_named("count")) is not None
        connection = await connect(server)
        [(status, _, _)] = await connection.exchange(request("GET", f"{BASE}?limit=1"))
        assert status == 200

        connection.writer.write(request("GET", f"{BASE}/{petition_id}/live"))
        head = await connection.reader.readuntil(b"\r\n\r\n")

        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert opened_by_lane(lane_log) == 0
        assert server.app[STATE].live.open == 2
        connection.close()
        watched.close()
