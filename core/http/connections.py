"""The connection layer, in front of aiohttp's protocol: what must happen before parsing.

aiohttp never times out a client that sends its request head slowly (slowloris), accepts
connections without bound, and parses every request before anything can refuse it.
``ConnectionGuard`` wraps each connection's protocol (``GuardedConnection``):

* past ``max_connections`` open connections, a new one gets a canned 503 with ``Retry-After``
  and is closed, without parsing anything, and without building aiohttp's protocol;
* past ``max_connections_per_address`` open connections from one address (trusted proxies
  excepted), a new one from it gets a canned 429 and is closed (``ConnectionsPerAddress``);
* a client must deliver a complete request head (up to the blank line) within
  ``header_timeout`` of connecting, and again of each response starting on a kept-alive
  connection; otherwise it gets a canned 408 and is closed;
* a body announced by ``Content-Length`` must keep to its deadline (``core.wire.bodies.BodyTimes``);
  one that is late past it by a sweep is cut (closed). The request's reader answers 408 at the
  deadline itself when it is still reading, so the cut normally follows that answer;
* each request head is stamped when its bytes arrive, so admission can measure sojourn time
  (now minus arrival) and run deadlines from arrival;
* while the process is overloaded, the edge (``core.admission.edge``) refuses a share of
  non-critical requests with canned bytes; it also refuses a new connection's first request
  that already waited too long in the kernel (``core.admission.kernel``), and critical writes
  while storage is saturated;
* then, of what the edge let through, hot public reads are answered by the fast lane
  (``core.http.fastlane``) from pre-rendered bytes.

A single sweeper checks deadlines a few times per timeout, so no timer is armed per request.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, cast

import orjson
from aiohttp import web

from core.admission.clients import (
    IPAddress,
    address_behind_proxies,
    is_trusted_proxy,
    peer_address,
)
from core.admission.inflight import CappedCounts
from core.admission.kernel import KernelQueueProbe
from core.background import stop
from core.http import keys as http_keys
from core.wire.errors import ServiceUnavailable, TooManyRequests
from core.wire.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate, render, translate

if TYPE_CHECKING:
    from aiohttp.web_protocol import RequestHandler

    from core.admission.clients import ClientAddressing
    from core.admission.edge import EdgeShedder
    from core.http.fastlane import FastLane
    from core.wire.bodies import BodyTimes

# Longer heads are refused by aiohttp's parser anyway; past this the scanner stops following.
_MAX_HEAD_BYTES = 64 * 1024


_CANNED_STATUSES = {
    408: ("Request timeout", "Request Timeout"),
    429: (TooManyRequests.title, "Too Many Requests"),
    503: (ServiceUnavailable.title, "Service Unavailable"),
}


def canned_problem(
    status: int,
    reason: str,
    detail: str,
    retry_after: int | None,
    *,
    language: str = DEFAULT_LANGUAGE,
    keep_alive: bool = False,
) -> bytes:
    """A problem+json answer as raw bytes, written before (or instead of) aiohttp's parser."""
    title, phrase = _CANNED_STATUSES[status]
    body = orjson.dumps(
        {
            "type": f"/problems/{reason}",
            "title": translate(title, language),
            "status": status,
            "detail": detail,
        }
    )
    head = [
        f"HTTP/1.1 {status} {phrase}",
        "Content-Type: application/problem+json",
        f"Content-Length: {len(body)}",
        f"Content-Language: {language}",
    ]
    if not keep_alive:
        head.append("Connection: close")
    if retry_after is not None:
        head.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# Answered before any request head is whole, so in English: there is no Accept-Language yet.
TOO_MANY_CONNECTIONS = canned_problem(
    503, "connections", "The server has too many open connections; try again shortly.", 1
)
HEAD_TIMEOUT = canned_problem(
    408, "header-timeout", "The request head was not received in time.", None
)
TOO_MANY_FROM_ADDRESS = canned_problem(
    429,
    "address-connections",
    "This address has too many open connections; close one and try again.",
    1,
)
# The same words as admission's own 503 for overload, so every shed answer reads alike.
EDGE_DETAIL = "the server is overloaded ({reason}); try again shortly"
SHED_AT_EDGE, SHED_AT_EDGE_CLOSING = (
    {
        language: canned_problem(
            503,
            "overloaded",
            render(EDGE_DETAIL, {"reason": "edge"}, language),
            1,
            language=language,
            keep_alive=keep_alive,
        )
        for language in LANGUAGES
    }
    for keep_alive in (True, False)
)
_ACCEPT_LANGUAGE = b"\naccept-language:"
# Clients send few distinct Accept-Language values, and negotiating one costs far more than
# finding it: the answers are remembered, up to a bound a flood of made-up values cannot pass.
_NEGOTIATED: dict[bytes, str] = {}
_NEGOTIATED_MAX = 256


def shed_at_edge(head: bytes, *, closing: bool = False) -> bytes:
    """The edge's 503 for ``head``, in the language its Accept-Language prefers; ``closing``
    announces that the connection closes after it.

    The edge holds exactly one whole request head here, so choosing the language costs one
    search of it (lower-cased, as header names are case-insensitive) and, when the header is
    there, negotiating its value.
    """
    answers = SHED_AT_EDGE_CLOSING if closing else SHED_AT_EDGE
    start = head.lower().find(_ACCEPT_LANGUAGE)
    if start < 0:
        return answers[DEFAULT_LANGUAGE]
    start += len(_ACCEPT_LANGUAGE)
    end = head.find(b"\r\n", start)
    value = head[start : end if end >= 0 else len(head)]
    language = _NEGOTIATED.get(value)
    if language is None:
        language = negotiate(value.decode("latin-1"))
        if len(_NEGOTIATED) < _NEGOTIATED_MAX:
            _NEGOTIATED[value] = language
    return answers[language]


class _MessageScanner:
    """Follows the request messages handed to aiohttp, to know when they end.

    The fast lane and the edge may answer on a connection only while aiohttp holds no part of
    a message, or their bytes would overtake (or split) aiohttp's answers. Bodies are followed
    by ``Content-Length``; a chunked or unparseable message makes the connection opaque, and
    aiohttp keeps it.
    """

    __slots__ = ("body_arrival", "body_left", "body_received", "head", "head_arrival", "opaque")

    def __init__(self) -> None:
        self.head = b""
        self.body_left = 0
        self.opaque = False
        # When the head of the message now being followed began, and of the one whose body is
        # pending, with the body bytes handed over so far: what the body's deadline runs from.
        self.head_arrival = 0.0
        self.body_arrival = 0.0
        self.body_received = 0

    @property
    def aligned(self) -> bool:
        """True between messages: everything handed over so far was whole messages."""
        return not self.head and not self.body_left and not self.opaque

    def feed(self, data: bytes, now: float, arrivals: deque[float]) -> bool:
        """Follow ``data``; stamp each message head that starts in it with ``now``.

        Returns whether the data ends in the middle of a head.
        """
        position, size = 0, len(data)
        while position < size and not self.opaque:
            if self.body_left:
                taken = min(self.body_left, size - position)
                self.body_left -= taken
                self.body_received += taken
                position += taken
                continue
            if not self.head:
                arrivals.append(now)
                self.head_arrival = now
            window = self.head + data[position:]
            end = window.find(b"\r\n\r\n")
            if end < 0:
                self.head = window
                if len(window) > _MAX_HEAD_BYTES:
                    self.opaque = True
                return True
            consumed = end + 4 - len(self.head)
            self.head = b""
            position += consumed
            self.body_left = _body_length(window[:end])
            if self.body_left < 0:
                self.opaque = True
            self.body_arrival, self.body_received = self.head_arrival, 0
        return False

    def body_due(self, times: BodyTimes) -> float | None:
        """When the pending body must have arrived, or None when none is pending."""
        if not self.body_left:
            return None
        return times.due(self.body_arrival, self.body_received)


def _body_length(head: bytes) -> int:
    """The body length a request head announces; -1 when it cannot be followed."""
    lower = head.lower()
    if b"\r\ntransfer-encoding:" in lower or b"\r\nupgrade:" in lower:
        return -1
    start = lower.find(b"\r\ncontent-length:")
    if start < 0:
        return 0
    start += len(b"\r\ncontent-length:")
    end = lower.find(b"\r\n", start)
    try:
        length = int(lower[start:] if end < 0 else lower[start:end])
    except ValueError:
        return -1
    return length if length >= 0 else -1


class GuardedConnection(asyncio.Protocol):
    """One connection: the guard's checks, the fast lane, the edge, and aiohttp behind them.

    aiohttp's protocol is built only when the first request the lane cannot answer arrives, so
    a connection served by the lane alone never pays for it.
    """

    __slots__ = (
        "_guard",
        "_inner",
        "_make_inner",
        "_reading_paused",
        "_refused",
        "_scanner",
        "_stream_lost",
        "address",
        "arrivals",
        "head_deadline",
        "kernel_arrival",
        "peer",
        "transport",
    )

    def __init__(self, guard: ConnectionGuard, make_inner: Callable[[], RequestHandler]) -> None:
        self._guard = guard
        self._make_inner = make_inner
        self._inner: RequestHandler | None = None
        self._refused = False
        self._reading_paused = False
        self._scanner = _MessageScanner()
        # Set once the lane handed the connection to an event stream (``hand_over``).
        self._stream_lost: Callable[[], None] | None = None
        self.arrivals: deque[float] = deque()
        # The address this connection counts against, when its address is capped.
        self.address: str | None = None
        self.head_deadline: float | None = None
        # When the first request reached the kernel, if it had when the process accepted it.
        self.kernel_arrival: float | None = None
        self.peer: IPAddress | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but honour its interface.
        self.transport = cast("asyncio.Transport", transport)
        age = self._guard.kernel.on_accept(transport)
        if age is not None:
            self.kernel_arrival = time.monotonic() - age
        refusal = self._guard.refusal(self)
        if refusal is not None:
            self._refused = True
            self.transport.write(refusal)
            self.transport.close()
            return
        self.head_deadline = time.monotonic() + self._guard.header_timeout
        if self._guard.lane is not None:
            self.peer = peer_address(transport)

    def data_received(self, data: bytes) -> None:
        if self._refused or self._stream_lost is not None:
            return
        now = time.monotonic()
        age = 0.0
        if self.kernel_arrival is not None:
            # The first request: it arrived when the kernel got it, not when Python read it.
            now, age, self.kernel_arrival = self.kernel_arrival, now - self.kernel_arrival, None
        if self._between_messages():
            # Under measured overload a refusal is cheaper than even the lane's answer, and
            # what it saves keeps critical work on time: the edge decides first.
            if self._shed_at_edge(data, age):
                return
            lane = self._guard.lane
            if lane is not None:
                data = self._answer_from_lane(lane, data, now)
                if not data:
                    return
        self._hand_to_handler(data, now)

    def _between_messages(self) -> bool:
        """Whether aiohttp holds no request of this connection, whole or in part."""
        if not self._scanner.aligned:
            return False
        inner = self._inner
        if inner is None:
            return True
        # aiohttp's handler loop waits on ``_waiter`` only once every response it owes has
        # been written and no parsed message is queued: only then may others write.
        waiter = inner._waiter
        return waiter is not None and not waiter.done() and not inner._messages

    def _answer_from_lane(self, lane: FastLane, data: bytes, now: float) -> bytes:
        """Answer the whole lane-eligible heads at the front of ``data``; return the rest."""
        transport = self.transport
        assert transport is not None
        while data.startswith((b"GET ", b"HEAD ")):
            end = data.find(b"\r\n\r\n")
            if end < 0:
                break
            # A stream may take only a connection aiohttp never had: its keep-alive timer would
            # otherwise close it under the stream.
            response, close = lane.answer(
                data[:end], self.peer, now, self if self._inner is None else None
            )
            if not response:
                break
            transport.write(response)
            data = data[end + 4 :]
            if close:
                transport.close()
                return b""
            if self._stream_lost is not None:
                return b""  # an event stream's now: what the client sends is not read
            self.await_next_head()
        return data

    def _shed_at_edge(self, data: bytes, age: float) -> bool:
        edge = self._guard.edge
        if edge is None:
            return False
        aged = edge.kernel_queue_standing and edge.age_target is not None and age > edge.age_target
        if not aged and edge.probability <= 0.0 and not edge.writes_saturated:
            return False
        if not data.startswith((b"GET ", b"HEAD ")):
            return self._refuse_write_at_edge(edge, data, age)
        if not data.endswith(b"\r\n\r\n") or data.count(b"\r\n\r\n") != 1:
            return False
        # A whole bodiless request head and nothing else: it can be refused without
        # desynchronising the connection, which then stays open for the next request.
        if (edge.refuse_aged(data, age) if aged else None) is None and edge.refuse(data) is None:
            return False
        assert self.transport is not None
        self.transport.write(shed_at_edge(data))
        self.await_next_head()
        return True

    def _refuse_write_at_edge(self, edge: EdgeShedder, data: bytes, age: float) -> bool:
        """Refuse a request with a body before aiohttp parses it, if the edge says so.

        When the whole body came with the head the connection stays open for the next request;
        otherwise the body is never read, and the answer closes the connection.
        """
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = data[: end + 4]
        length = _body_length(head[:end])
        if length < 0:
            return False  # chunked or an upgrade: only aiohttp can follow it
        if edge.refuse_aged(head, age) is None and edge.refuse(head) is None:
            return False
        transport = self.transport
        assert transport is not None
        if len(data) == end + 4 + length:
            transport.write(shed_at_edge(head))
            self.await_next_head()
        else:
            transport.write(shed_at_edge(head, closing=True))
            transport.close()
        return True

    def _hand_to_handler(self, data: bytes, now: float) -> None:
        inner = self._inner
        if inner is None:
            inner = self._inner = self._make_inner()
            inner.connection_made(self.transport)  # type: ignore[arg-type]
            if self._reading_paused:
                inner.pause_writing()
        if not self._scanner.feed(data, now, self.arrivals) and self.head_deadline is not None:
            self.head_deadline = None
        inner.data_received(data)

    def hand_over(self, on_lost: Callable[[], None]) -> asyncio.Transport:
        """Give the connection to an event stream the lane opened: no more requests are read
        on it, no head is due, and ``on_lost`` is called when it closes."""
        assert self.transport is not None
        self._stream_lost = on_lost
        self.head_deadline = None
        return self.transport

    def take_arrival(self) -> float | None:
        """When the oldest request head not yet admitted arrived (``data_received``)."""
        return self.arrivals.popleft() if self.arrivals else None

    def eof_received(self) -> None:
        if self._inner is not None and not self._refused:
            self._inner.eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.forget(self)
        if self._stream_lost is not None:
            self._stream_lost()
        if self._inner is not None and not self._refused:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        # A client that sends faster than it reads its answers: stop reading until it catches up.
        if self._inner is not None:
            self._inner.pause_writing()
        elif self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def await_next_head(self) -> None:
        self.head_deadline = time.monotonic() + self._guard.header_timeout

    def body_due(self, times: BodyTimes) -> float | None:
        """When the body now arriving must be whole, or None when no body is pending."""
        return self._scanner.body_due(times)

    def cut(self) -> bool:
        """Close the connection without a word: an answer (the 408 for a late body, or the
        request's own) may be on its way out, and canned bytes could split it. Returns whether
        this is the first cut; a connection still open at the next is aborted, since a client
        that does not read what it was sent would otherwise keep it open."""
        transport = self.transport
        if transport is None:
            return False
        if transport.is_closing():
            transport.abort()
            return False
        transport.close()
        return True

    def time_out(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(HEAD_TIMEOUT)
            self.transport.close()

    def close_if_idle(self) -> None:
        """Close a connection that only the lane served: aiohttp's shutdown does not know it.
        A stream's connection is left to the stream, which ends it with a final event."""
        if self._inner is None and self._stream_lost is None and self.transport is not None:
            self.transport.close()


class ConnectionsPerAddress:
    """Open connections per client address, capped, as HAProxy's ``sc_conn_cur`` and nginx's
    ``limit_conn`` cap them.

    The address is the peer's (an IPv6 peer by its configured prefix, as rate limits key it).
    A trusted proxy's connections are not counted: they carry many clients, and admission caps
    each of those by its forwarded address (``core.admission.inflight``).
    """

    def __init__(self, cap: int, addressing: ClientAddressing) -> None:
        self._addressing = addressing
        self.counts = CappedCounts(cap)

    def admit(self, connection: GuardedConnection) -> bool:
        """Count ``connection`` against its address; False when the address is at its cap."""
        peer = peer_address(connection.transport)
        if peer is None or is_trusted_proxy(peer, self._addressing):
            return True
        address = address_behind_proxies(peer, (), (), self._addressing)
        if self.counts.full(address):
            return False
        self.counts.add(address)
        connection.address = address
        return True

    def leave(self, connection: GuardedConnection) -> None:
        if connection.address is not None:
            self.counts.remove(connection.address)
            connection.address = None


class ConnectionGuard:
    """Counts open connections and enforces the head timeout for one listening server."""

    def __init__(
        self,
        *,
        max_connections: int,
        header_timeout: float,
        on_refused: Callable[[str], None] = lambda reason: None,
        lane: FastLane | None = None,
        body_times: BodyTimes | None = None,
        per_address: ConnectionsPerAddress | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.body_times = body_times
        self._per_address = per_address
        self._on_refused = on_refused
        self._open: dict[asyncio.BaseTransport, GuardedConnection] = {}
        self._edge: EdgeShedder | None = None
        self._lane = lane
        # The listeners' accept queue and each connection's wait in the kernel.
        self.kernel = KernelQueueProbe()

    @property
    def lane(self) -> FastLane | None:
        """What answers hot public reads before parsing, if admission is on."""
        return self._lane

    @property
    def edge(self) -> EdgeShedder | None:
        """What refuses requests before parsing while the process is overloaded, if attached."""
        return self._edge

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def wrap(self, factory: Callable[[], RequestHandler]) -> Callable[[], GuardedConnection]:
        def make() -> GuardedConnection:
            return GuardedConnection(self, factory)

        return make

    def refusal(self, connection: GuardedConnection) -> bytes | None:
        """The canned answer refusing a new connection, or None to admit it."""
        if len(self._open) >= self.max_connections:
            self._on_refused("connections")
            return TOO_MANY_CONNECTIONS
        assert connection.transport is not None
        if self._per_address is not None and not self._per_address.admit(connection):
            self._on_refused("address_connections")
            return TOO_MANY_FROM_ADDRESS
        self._open[connection.transport] = connection
        return None

    def attach_edge(self, edge: EdgeShedder) -> None:
        """Let ``edge`` refuse whole bodiless request heads before aiohttp parses them.

        Admission attaches it at startup, once the routes it classifies by are known.
        """
        self._edge = edge

    def forget(self, connection: GuardedConnection) -> None:
        if connection.transport is not None:
            self._open.pop(connection.transport, None)
        if self._per_address is not None:
            self._per_address.leave(connection)

    def response_started(self, transport: Any) -> None:
        connection = self._open.get(transport)
        if connection is not None:
            connection.await_next_head()

    def long_response(self, transport: Any) -> None:
        """The response now started on ``transport`` lasts (an event stream) and ends with the
        connection: no next request head is due meanwhile."""
        connection = self._open.get(transport)
        if connection is not None:
            connection.head_deadline = None

    def arrival(self, transport: Any) -> float | None:
        """When the request now entering the middlewares on ``transport`` arrived, if known."""
        connection = self._open.get(transport)
        return None if connection is None else connection.take_arrival()

    def close_lane_connections(self) -> None:
        """Close the connections aiohttp never saw; its own shutdown closes the others."""
        for connection in list(self._open.values()):
            connection.close_if_idle()

    def sweep(self, now: float) -> None:
        for connection in list(self._open.values()):
            deadline = connection.head_deadline
            if deadline is not None and now > deadline:
                self._on_refused("header_timeout")
                connection.head_deadline = None
                connection.time_out()
        self.cut_late_bodies(now)

    @property
    def sweep_period(self) -> float:
        """A quarter of the shortest time limit the sweeper enforces."""
        shortest = self.header_timeout
        if self.body_times is not None:
            shortest = min(shortest, self.body_times.total, self.body_times.grace or math.inf)
        return max(0.05, shortest / 4)

    def cut_late_bodies(self, now: float) -> None:
        """Close each connection whose body is late by more than a sweep past its deadline.

        The sweep of slack lets the request's own reader, which times out at the deadline
        itself, answer 408 first.
        """
        times = self.body_times
        if times is None:
            return
        late = now - self.sweep_period
        for connection in list(self._open.values()):
            due = connection.body_due(times)
            if due is not None and late > due and connection.cut():
                self._on_refused("body_timeout")

    async def run_sweeper(self) -> None:
        period = self.sweep_period
        while True:
            await asyncio.sleep(period)
            self.sweep(time.monotonic())


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    guard = request.app.get(http_keys.GUARD)
    if guard is not None:
        guard.response_started(request.transport)


class GuardedTCPSite(web.TCPSite):
    """A TCPSite whose connections pass through a ConnectionGuard.

    It listens on ``host``/``port``, or on an already bound ``sock`` (a gunicorn worker's).
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: ConnectionGuard,
        *,
        sock: socket.socket | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(runner, **kwargs)
        self._guard = guard
        self._sock = sock

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        if self._sock is not None:
            self._server = await loop.create_server(
                self._guard.wrap(server), sock=self._sock, backlog=self._backlog
            )
        else:
            self._server = await loop.create_server(
                self._guard.wrap(server),
                self._host,
                self._port,
                backlog=self._backlog,
                reuse_address=self._reuse_address,
                reuse_port=self._reuse_port,
            )
        for listener in self._server.sockets:
            self._guard.kernel.add_listener(listener)

    async def stop(self) -> None:
        self._guard.kernel.remove_listeners()
        await super().stop()
        self._guard.close_lane_connections()


async def guard_sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    guard = app.get(http_keys.GUARD)
    if guard is None:
        yield
        return
    task = asyncio.create_task(guard.run_sweeper(), name="qatysu-connection-guard")
    yield
    await stop(task)
