"""The kernel's queue, seen from admission: how long the listener's accept queue is, and how old
a new connection's request already was when the process took it.

Before any byte reaches Python a connection may wait in the listening socket's accept queue:
libuv accepts one connection per loop iteration, and while warm connections keep the loop busy
new ones wait there, unseen by any stamp taken in ``data_received``. Linux reports both halves
through ``TCP_INFO``:

* on a listening socket, ``tcpi_unacked`` is the accept queue's current length and
  ``tcpi_sacked`` its bound (the backlog);
* on an accepted connection, ``tcpi_last_data_recv`` is the milliseconds since the kernel
  last received data on it (or, with none yet, since the handshake completed): the request's
  age at accept, its wait in the accept queue included; ``tcpi_bytes_received`` says whether
  a request had arrived at all (a browser's preconnected socket may stay silent for seconds,
  and that wait is the client's, not the server's).

Each read is one ``getsockopt``: about 1 µs on a plain socket, but 5 to 7 µs through uvloop's
stand-in for one, so the probe reads the listener through its own duplicate of the descriptor
(4 µs a tick, Python included), and a new connection costs about 5 µs here plus 2 µs for its
histogram (timeit on a busy 2-core machine; BENCHMARKS.md). Elsewhere than on Linux, or on a
socket that is not TCP, the readers return None and admission runs on its other signals.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# struct tcp_info (linux/tcp.h): eight one-byte fields, then 32-bit counters.
_UNACKED_SACKED = struct.Struct("=II")
_UNACKED_OFFSET = 24
_LAST_DATA_RECV = struct.Struct("=I")
_LAST_DATA_RECV_OFFSET = 52
_BYTES_RECEIVED = struct.Struct("=Q")
_BYTES_RECEIVED_OFFSET = 128
_CONNECTION_INFO_BYTES = 136
_TCP_INFO = getattr(socket, "TCP_INFO", None)
# A Linux listening socket reports TCP_LISTEN (10) in tcpi_state.
_TCP_LISTEN = 10


class SocketLike(Protocol):
    """What a socket, or uvloop's stand-in for one, offers that the readers need."""

    def getsockopt(self, level: int, option: int, buflen: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class AcceptQueue:
    """A listener's accept queue: connections waiting for ``accept()``, and its bound."""

    length: int
    backlog: int


def accept_queue(listener: SocketLike) -> AcceptQueue | None:
    """The accept queue of ``listener``, or None where the kernel does not report it."""
    if _TCP_INFO is None:
        return None
    try:
        raw = listener.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 32)
    except OSError:
        return None
    if len(raw) < 32 or raw[0] != _TCP_LISTEN:
        return None
    length, backlog = _UNACKED_SACKED.unpack_from(raw, _UNACKED_OFFSET)
    return AcceptQueue(length=length, backlog=backlog)


@dataclass(frozen=True, slots=True)
class KernelWait:
    """How long a connection had waited in the kernel when the process took it."""

    seconds: float
    # Whether request bytes had arrived: only then is ``seconds`` the age of a request.
    request_arrived: bool


def kernel_wait(connection: SocketLike) -> KernelWait | None:
    """Seconds since the kernel last received data on ``connection`` (at accept: how long its
    first request, or with none yet its handshake, has waited), or None where the kernel does
    not report it."""
    if _TCP_INFO is None:
        return None
    try:
        raw = connection.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _CONNECTION_INFO_BYTES)
    except OSError:
        return None
    if len(raw) < _CONNECTION_INFO_BYTES:
        return None
    milliseconds = _LAST_DATA_RECV.unpack_from(raw, _LAST_DATA_RECV_OFFSET)[0]
    received = _BYTES_RECEIVED.unpack_from(raw, _BYTES_RECEIVED_OFFSET)[0]
    return KernelWait(seconds=milliseconds / 1000.0, request_arrived=received > 0)


def accept_queue_delay(length: int, accepted: int, elapsed: float, *, cap: float = 1.0) -> float:
    """The wait a connection joining the accept queue now can expect, in seconds (Little's law).

    ``accepted`` connections were taken over the last ``elapsed`` seconds. With a queue and no
    accept at all, the loop took none for the whole window: the wait is at least that window.
    The estimate is capped, so one stall cannot wind the controller up for long.
    """
    if length <= 0 or elapsed <= 0:
        return 0.0
    if accepted <= 0:
        return min(cap, elapsed)
    return min(cap, length * elapsed / accepted)


class KernelQueueProbe:
    """The listeners of one server, read once a tick, and each connection's wait at accept.

    ``on_wait`` (attached by admission) receives every accepted connection's kernel wait; until
    it is attached nothing is read per connection, so admission off costs nothing here.
    """

    __slots__ = ("_accepted", "_listeners", "on_wait")

    def __init__(self) -> None:
        self._listeners: list[socket.socket] = []
        self._accepted = 0
        self.on_wait: Callable[[float], None] | None = None

    def add_listener(self, listener: socket.socket) -> None:
        # uvloop's stand-in for a socket takes about 4 µs a getsockopt, a socket 0.5 µs: the
        # probe reads its own duplicate of the listener's descriptor.
        self._listeners.append(socket.fromfd(listener.fileno(), listener.family, listener.type))

    def remove_listeners(self) -> None:
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()

    def on_accept(self, transport: asyncio.BaseTransport) -> float | None:
        """Count a connection taken from the accept queue; return the age its request had
        then, or None when no request had arrived yet (or nothing is measured)."""
        self._accepted += 1
        on_wait = self.on_wait
        if on_wait is None:
            return None
        connection = transport.get_extra_info("socket")
        wait = None if connection is None else kernel_wait(connection)
        if wait is None:
            return None
        on_wait(wait.seconds)
        return wait.seconds if wait.request_arrived else None

    def read(self) -> tuple[int, int]:
        """The summed accept-queue length of the listeners, and the connections accepted since
        the last read (which starts the count over)."""
        length = sum(queue.length for queue in self.queues())
        accepted, self._accepted = self._accepted, 0
        return length, accepted

    def queues(self) -> list[AcceptQueue]:
        """The accept queue of each listener the kernel reports one for."""
        return [queue for queue in map(accept_queue, self._listeners) if queue is not None]


class StandingWait:
    """CoDel's test, on the kernel's queue: is there a standing wait, or only a burst?

    A wait is standing when even the shortest kernel wait of the connections accepted over a
    whole ``interval`` was above ``target``; a burst, or a moment the process was throttled,
    leaves some connections young and is not refused for. A window in which nothing was
    accepted while connections waited is standing too: the loop took none at all.
    """

    __slots__ = ("_shortest", "_started", "interval", "standing", "target")

    def __init__(self, *, target: float, interval: float) -> None:
        self.target = target
        self.interval = interval
        self.standing = False
        self._shortest: float | None = None
        self._started: float | None = None

    def add(self, seconds: float) -> None:
        if self._shortest is None or seconds < self._shortest:
            self._shortest = seconds

    def update(self, now: float, queue_length: int) -> bool:
        """Close the window if ``interval`` has passed; return whether a wait stands."""
        if self._started is None:
            self._started = now
        elif now - self._started >= self.interval:
            shortest = self._shortest
            self.standing = queue_length > 0 if shortest is None else shortest > self.target
            self._shortest = None
            self._started = now
        return self.standing
