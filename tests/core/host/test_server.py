"""The running server: handlers of departed clients are cancelled; a busy port fails start-up."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp import web

from core.host.server import start_server
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.priority import Priority
from core.plugin_host.routing import RoutePolicy
from core.startup import StartupFailure


class Waiting:
    """A route that waits forever, recording whether its handler was cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    @hookimpl
    def qatysu_add_routes(self, routes: Any, app: web.Application) -> None:
        async def wait(request: web.Request) -> web.Response:
            self.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            return web.json_response({})

        routes.add(
            "GET",
            "/test/wait",
            wait,
            name="test.wait",
            summary="waits",
            policy=RoutePolicy(priority=Priority.NORMAL),
        )


async def test_the_handler_of_a_client_that_hung_up_is_cancelled(make_settings) -> None:
    plugin = Waiting()
    server = await start_server(
        make_settings(server={"port": 0}, admission={"enabled": True}), extra_plugins=(plugin,)
    )
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /test/wait HTTP/1.1\r\nHost: t\r\n\r\n")
    await asyncio.wait_for(plugin.started.wait(), timeout=5)
    writer.close()
    await asyncio.wait_for(plugin.cancelled.wait(), timeout=5)
    await server.drain()


async def test_a_busy_port_is_a_start_up_failure_that_stops_what_had_started(
    make_settings, caplog
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupFailure) as refused:
            await start_server(make_settings(server={"port": port}))
    assert str(refused.value) == (
        f"cannot listen on http://127.0.0.1:{port}: Address already in use "
        "(another server on this port? choose one with --port)"
    )
    # The writer was closed in order, not cancelled with the event loop.
    assert [t for t in asyncio.all_tasks() if t.get_name() == "qatysu-writer"] == []
    assert "writer stopped unexpectedly" not in caplog.text
