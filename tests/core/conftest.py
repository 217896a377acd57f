"""Fixtures for the core's tests on real listening servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from core.host.server import RunningServer, start_server


@pytest.fixture
async def serve(make_settings) -> AsyncIterator[Any]:
    running: list[RunningServer] = []

    async def start(**sections: Any) -> RunningServer:
        sections.setdefault("admission", {})
        sections["admission"] = {"enabled": True, **sections["admission"]}
        sections["server"] = {"port": 0, **sections.get("server", {})}
        instance = await start_server(make_settings(**sections))
        running.append(instance)
        return instance

    yield start
    for instance in running:
        await instance.drain()


@pytest.fixture
def petition_on(approved_petition: Any) -> Callable[[RunningServer], Awaitable[str]]:
    """An approved petition on a running server; its id."""

    async def approved(server: RunningServer) -> str:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.port}") as session:
            petition = await approved_petition(session)
        petition_id: str = petition["id"]
        return petition_id

    return approved
