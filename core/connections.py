"""Connection-level protection that aiohttp lacks: a connection cap and a header-read timeout.

aiohttp never times out a client that sends its request head slowly (slowloris), and it accepts
connections without bound. ``ConnectionGuard`` wraps each connection's protocol:

* past ``max_connections`` open connections, a new one gets a canned 503 with ``Retry-After``
  and is closed, without parsing anything: refusing costs a few microseconds;
* a client must deliver a complete request head (up to the blank line) within
  ``header_timeout`` of connecting, and again of each response starting on a kept-alive
  connection; otherwise it gets a canned 408 and is closed.

A single sweeper checks deadlines a few times per timeout, so no timer is armed per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, cast

import orjson
from aiohttp import web

from core.background import stop

if TYPE_CHECKING:
    from aiohttp.web_protocol import RequestHandler

    from core.admission.edge import EdgeShedder
    from core.admission.priority import Priority


def canned_problem(
    status: int, reason: str, detail: str, retry_after: int | None, *, keep_alive: bool = False
) -> bytes:
    body = orjson.dumps(
        {"type": f"/problems/{reason}", "title": detail, "status": status, "detail": detail}
    )
    head = [
        f"HTTP/1.1 {status} {'Service Unavailable' if status == 503 else 'Request Timeout'}",
        "Content-Type: application/problem+json",
        f"Content-Length: {len(body)}",
    ]
    if not keep_alive:
        head.append("Connection: close")
    if retry_after is not None:
        head.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


TOO_MANY_CONNECTIONS = canned_problem(
    503, "connections", "The server has too many open connections; try again shortly.", 1
)
SHED_AT_EDGE = canned_problem(
    503, "overloaded", "The server is overloaded; try again shortly.", 1, keep_alive=True
)
HEAD_TIMEOUT = canned_problem(
    408, "header-timeout", "The request head was not received in time.", None
)


class GuardedConnection(asyncio.Protocol):
    """Delegates to aiohttp's protocol, watching for the end of each request head."""

    __slots__ = ("_guard", "_inner", "_refused", "_tail", "head_deadline", "transport")

    def __init__(self, guard: ConnectionGuard, inner: RequestHandler) -> None:
        self._guard = guard
        self._inner = inner
        self._refused = False
        self._tail = b""
        self.head_deadline: float | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but honour its interface.
        self.transport = cast("asyncio.Transport", transport)
        if not self._guard.admit(self):
            self._refused = True
            self.transport.write(TOO_MANY_CONNECTIONS)
            self.transport.close()
            return
        self.head_deadline = time.monotonic() + self._guard.header_timeout
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        edge = self._guard.edge
        if (
            edge is not None
            and edge.probability > 0.0
            and self.head_deadline is not None
            and not self._tail
            and data.startswith((b"GET ", b"HEAD "))
            and data.endswith(b"\r\n\r\n")
            and data.count(b"\r\n\r\n") == 1
        ):
            # A whole bodiless request head and nothing else: it can be refused without
            # desynchronising the connection, which then stays open for the next request.
            priority = edge.refuse(data)
            if priority is not None:
                self._guard.shed_at_edge(priority)
                assert self.transport is not None
                self.transport.write(SHED_AT_EDGE)
                self.await_next_head()
                return
        if self.head_deadline is not None:
            # A head ends with a blank line; keep three bytes in case it straddles two reads.
            window = self._tail + data
            if b"\r\n\r\n" in window:
                self.head_deadline = None
                self._tail = b""
            else:
                self._tail = window[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> None:
        if not self._refused:
            self._inner.eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.forget(self)
        if not self._refused:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def await_next_head(self) -> None:
        self.head_deadline = time.monotonic() + self._guard.header_timeout
        self._tail = b""

    def time_out(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(HEAD_TIMEOUT)
            self.transport.close()


class ConnectionGuard:
    """Counts open connections and enforces the head timeout for one listening server."""

    def __init__(
        self,
        *,
        max_connections: int,
        header_timeout: float,
        on_refused: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self._on_refused = on_refused
        self._open: dict[asyncio.BaseTransport, GuardedConnection] = {}
        self.edge: EdgeShedder | None = None
        self.on_edge_shed: Callable[[Priority], None] = lambda priority: None
        self.refused = 0
        self.timed_out = 0

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def wrap(self, factory: Callable[[], RequestHandler]) -> Callable[[], GuardedConnection]:
        def make() -> GuardedConnection:
            return GuardedConnection(self, factory())

        return make

    def admit(self, connection: GuardedConnection) -> bool:
        if len(self._open) >= self.max_connections:
            self.refused += 1
            self._on_refused("connections")
            return False
        assert connection.transport is not None
        self._open[connection.transport] = connection
        return True

    def shed_at_edge(self, priority: Priority) -> None:
        self.on_edge_shed(priority)

    def forget(self, connection: GuardedConnection) -> None:
        if connection.transport is not None:
            self._open.pop(connection.transport, None)

    def response_started(self, transport: Any) -> None:
        connection = self._open.get(transport)
        if connection is not None:
            connection.await_next_head()

    def sweep(self, now: float) -> None:
        for connection in list(self._open.values()):
            deadline = connection.head_deadline
            if deadline is not None and now > deadline:
                self.timed_out += 1
                self._on_refused("header_timeout")
                connection.head_deadline = None
                connection.time_out()

    async def run_sweeper(self) -> None:
        period = max(0.05, self.header_timeout / 4)
        while True:
            await asyncio.sleep(period)
            self.sweep(time.monotonic())


GUARD: web.AppKey[ConnectionGuard] = web.AppKey("connection_guard")


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    guard = request.app.get(GUARD)
    if guard is not None:
        guard.response_started(request.transport)


class GuardedTCPSite(web.TCPSite):
    """A TCPSite whose connections pass through a ConnectionGuard."""

    def __init__(self, runner: web.BaseRunner, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(runner, **kwargs)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            self._guard.wrap(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )


async def guard_sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    guard = app.get(GUARD)
    if guard is None:
        yield
        return
    task = asyncio.create_task(guard.run_sweeper(), name="qatysu-connection-guard")
    yield
    await stop(task)
