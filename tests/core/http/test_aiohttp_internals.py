"""The private aiohttp surface that ``core/http/connections.py`` relies on, on the installed
release.

The connection guard decides whether it may answer from the fast lane, or refuse at the edge, by
reading two private attributes of aiohttp's ``RequestHandler``: ``_waiter`` (the future its
handler loop awaits between messages) and ``_messages`` (parsed requests not yet handled). Those
names are not API. When an upgrade renames one or changes what it means, these tests fail and name
it, instead of the guard silently answering out of turn.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

# The request the handler below holds open, so that a message is in flight.
SLOW_PATH = "/slow"


@pytest.fixture
async def served() -> AsyncIterator[tuple[web.Server, int, asyncio.Event]]:
    release = asyncio.Event()

    async def handler(request: web.BaseRequest) -> web.Response:
        if request.path == SLOW_PATH:
            await release.wait()
        return web.Response(text="ok")

    server = web.Server(handler)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, port, release
    finally:
        release.set()
        await server.shutdown(1.0)
        listener.close()
        await listener.wait_closed()


async def _exchange(writer: asyncio.StreamWriter, path: str) -> None:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()


async def _only_connection(server: web.Server) -> RequestHandler:
    for _ in range(200):
        if server.connections:
            return server.connections[0]
        await asyncio.sleep(0.005)
    raise AssertionError("aiohttp registered no connection")


@pytest.mark.parametrize("attribute", ["_waiter", "_messages"])
def test_request_handler_still_declares_the_attribute_the_guard_reads(attribute: str) -> None:
    assert attribute in RequestHandler.__slots__, (
        f"aiohttp's RequestHandler no longer has {attribute!r}; "
        "core/http/connections.py GuardedConnection._between_messages must be rewritten"
    )


async def test_an_idle_keep_alive_connection_waits_on_a_pending_waiter_with_no_messages(
    served: tuple[web.Server, int, asyncio.Event],
) -> None:
    server, port, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await _exchange(writer, "/fast")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        await reader.readexactly(2)
        handler = await _only_connection(server)
        for _ in range(200):
            waiter = handler._waiter
            if waiter is not None:
                break
            await asyncio.sleep(0.005)
        assert isinstance(handler._waiter, asyncio.Future)
        assert not handler._waiter.done()
        assert isinstance(handler._messages, collections.deque)
        assert len(handler._messages) == 0
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_connection_with_a_request_in_flight_has_no_pending_waiter(
    served: tuple[web.Server, int, asyncio.Event],
) -> None:
    server, port, release = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await _exchange(writer, SLOW_PATH)
        handler = await _only_connection(server)
        for _ in range(200):
            if handler._waiter is None or handler._waiter.done():
                break
            await asyncio.sleep(0.005)
        waiter = handler._waiter
        # The guard's rule: only a pending waiter and an empty queue mean "between messages".
        assert waiter is None or waiter.done()
        release.set()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_pipelined_request_waits_in_messages_while_the_first_is_handled(
    served: tuple[web.Server, int, asyncio.Event],
) -> None:
    server, port, release = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = "GET {} HTTP/1.1\r\nHost: x\r\n\r\n"
        writer.write((request.format(SLOW_PATH) + request.format("/fast")).encode())
        await writer.drain()
        handler = await _only_connection(server)
        for _ in range(200):
            if handler._messages:
                break
            await asyncio.sleep(0.005)
        assert len(handler._messages) == 1
        release.set()
        for _ in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            await reader.readexactly(2)
    finally:
        writer.close()
        await writer.wait_closed()
