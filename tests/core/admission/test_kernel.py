"""The kernel's queue as admission reads it: the listener's accept queue and a connection's wait."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from core.admission.kernel import (
    AcceptQueue,
    KernelQueueProbe,
    StandingWait,
    accept_queue,
    accept_queue_delay,
    kernel_wait,
)

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="TCP_INFO is read this way on Linux only"
)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(7)
    yield server
    server.close()


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for client in opened:
        client.close()


def connect(listener: socket.socket, clients: list[socket.socket], data: bytes = b"") -> None:
    client = socket.create_connection(listener.getsockname())
    if data:
        client.sendall(data)
    clients.append(client)


@linux_only
def test_the_accept_queue_counts_connections_not_yet_accepted_and_reports_the_backlog(
    listener: socket.socket, clients: list[socket.socket]
) -> None:
    assert accept_queue(listener) == AcceptQueue(length=0, backlog=7)
    for _ in range(3):
        connect(listener, clients)
    assert accept_queue(listener) == AcceptQueue(length=3, backlog=7)
    listener.accept()[0].close()
    assert accept_queue(listener) == AcceptQueue(length=2, backlog=7)


@linux_only
def test_a_socket_that_is_not_listening_has_no_accept_queue(
    listener: socket.socket, clients: list[socket.socket]
) -> None:
    connect(listener, clients)
    assert accept_queue(clients[0]) is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert accept_queue(udp) is None


@linux_only
def test_an_accepted_connection_says_whether_its_request_had_arrived(
    listener: socket.socket, clients: list[socket.socket]
) -> None:
    connect(listener, clients, b"GET / HTTP/1.1\r\n\r\n")
    connect(listener, clients)
    with_request, _ = listener.accept()
    silent, _ = listener.accept()
    try:
        waited = kernel_wait(with_request)
        assert waited is not None
        assert waited.request_arrived
        assert waited.seconds >= 0
        quiet = kernel_wait(silent)
        assert quiet is not None
        assert not quiet.request_arrived
    finally:
        with_request.close()
        silent.close()


def test_a_socket_that_fails_the_read_gives_no_signal() -> None:
    class Broken:
        def getsockopt(self, level: int, option: int, buflen: int) -> bytes:
            raise OSError("not a TCP socket")

    assert accept_queue(Broken()) is None
    assert kernel_wait(Broken()) is None


@pytest.mark.parametrize(
    ("length", "accepted", "elapsed", "delay"),
    [
        (0, 10, 0.015, 0.0),  # no queue, no wait
        (30, 10, 0.015, 0.045),  # thirty waiting, ten taken in 15 ms: 45 ms to go
        (5, 0, 0.015, 0.015),  # a queue and no accept at all: at least the whole window
        (10_000, 1, 0.015, 1.0),  # capped
        (3, 3, 0.0, 0.0),  # no window to measure over
    ],
)
def test_the_accept_queue_implies_a_wait_of_its_length_over_the_accept_rate(
    length: int, accepted: int, elapsed: float, delay: float
) -> None:
    assert accept_queue_delay(length, accepted, elapsed) == pytest.approx(delay)


class _Transport:
    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self._sock if name == "socket" else None


class _Socket:
    """A connection whose TCP_INFO says: last data ``milliseconds`` ago, ``received`` bytes."""

    def __init__(self, milliseconds: int, received: int) -> None:
        self._raw = bytearray(136)
        self._raw[52:56] = milliseconds.to_bytes(4, sys.byteorder)
        self._raw[128:136] = received.to_bytes(8, sys.byteorder)

    def getsockopt(self, level: int, option: int, buflen: int) -> bytes:
        return bytes(self._raw[:buflen])


@linux_only
def test_the_probe_reports_a_requests_age_only_once_it_has_arrived() -> None:
    probe = KernelQueueProbe()
    waits: list[float] = []
    assert probe.on_accept(_Transport(_Socket(30, 120))) is None  # nothing attached yet
    probe.on_wait = waits.append
    assert probe.on_accept(_Transport(_Socket(30, 120))) == pytest.approx(0.030)
    assert probe.on_accept(_Transport(_Socket(500, 0))) is None  # a silent preconnect
    assert probe.on_accept(_Transport(None)) is None
    # Every accepted connection's wait feeds admission, a silent one's included.
    assert waits == pytest.approx([0.030, 0.5])
    assert probe.read() == (0, 4)
    assert probe.read() == (0, 0)


@linux_only
def test_the_probe_sums_its_listeners_queues(
    listener: socket.socket, clients: list[socket.socket]
) -> None:
    probe = KernelQueueProbe()
    probe.add_listener(listener)
    try:
        for _ in range(2):
            connect(listener, clients)
        assert probe.read() == (2, 0)
    finally:
        probe.remove_listeners()
    assert probe.read() == (0, 0)


def test_a_wait_stands_only_when_every_connection_of_a_whole_interval_waited_too_long() -> None:
    wait = StandingWait(target=0.050, interval=0.1)
    assert not wait.update(0.0, queue_length=0)  # the first window opens
    for seconds in (0.3, 0.2, 0.08):
        wait.add(seconds)
    assert not wait.update(0.05, queue_length=9)  # the window is not over yet
    assert wait.update(0.1, queue_length=9)
    # One young connection in the next window: a burst, not a standing queue.
    for seconds in (0.3, 0.01, 0.2):
        wait.add(seconds)
    assert not wait.update(0.2, queue_length=9)


def test_a_window_without_accepts_stands_only_if_connections_were_waiting() -> None:
    wait = StandingWait(target=0.050, interval=0.1)
    wait.update(0.0, queue_length=0)
    assert not wait.update(0.1, queue_length=0)  # idle
    assert wait.update(0.25, queue_length=4)  # waiting, and none taken: the loop stalled
