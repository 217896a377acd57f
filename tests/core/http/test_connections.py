"""The connection guard on a real listening server: a cap on connections and a head timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import orjson
import pytest

from core.admission.edge import EdgeShedder
from core.admission.kernel import AcceptQueue, KernelQueueProbe, StandingWait
from core.host.server import RunningServer, start_server
from core.http import connections
from core.http import keys as http_keys
from core.http.connections import (
    HEAD_TIMEOUT,
    TOO_MANY_CONNECTIONS,
    ConnectionGuard,
    GuardedConnection,
    shed_at_edge,
)
from core.observability import keys as observability_keys
from core.settings import Settings
from core.storage.writer import Writer
from core.wire.i18n import translate
from tests.support.identities import citizen, moderator
from tests.support.petitions import BASE, PETITION
from tests.support.slowbodies import status_of


@pytest.fixture
async def serve(make_settings) -> AsyncIterator[Callable[..., object]]:
    running: list[RunningServer] = []

    async def start(
        *, admission: bool = True, control: dict[str, object] | None = None, **server: object
    ) -> RunningServer:
        settings: Settings = make_settings(
            server={"port": 0, **server}, admission={"enabled": admission, **(control or {})}
        )
        instance = await start_server(settings)
        running.append(instance)
        return instance

    yield start
    for instance in running:
        await instance.drain()


def _refusals(server: RunningServer, reason: str) -> float | None:
    return server.app[observability_keys.METRICS].registry.get_sample_value(
        "qatysu_admission_rejected_total", {"reason": reason, "priority": "none"}
    )


async def _get(port: int, path: str = "/healthz") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return data


async def test_a_slowloris_client_is_cut_off_while_others_are_served(serve) -> None:
    server = await serve(header_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # never finishes its head
    for _ in range(3):
        await asyncio.sleep(0.1)
        assert (await _get(server.port)).startswith(b"HTTP/1.1 200")
        writer.write(b"X-Drip: 1\r\n")
    answer = await asyncio.wait_for(reader.read(), timeout=2)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
    assert b"application/problem+json" in answer
    assert _refusals(server, "header_timeout") == 1.0
    writer.close()


async def test_a_kept_alive_connection_idle_past_the_head_timeout_is_closed(serve) -> None:
    server = await serve(header_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    first = await reader.readuntil(b'{"status":"ok"}')
    assert first.startswith(b"HTTP/1.1 200")
    rest = await asyncio.wait_for(reader.read(), timeout=2)
    assert rest.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_connections_past_the_cap_get_a_canned_503_and_the_rest_are_served(serve) -> None:
    server = await serve(max_connections=2, header_timeout=5)
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
    await asyncio.sleep(0.05)
    refused = await _get(server.port)
    assert refused.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"Retry-After: 1" in refused
    assert _refusals(server, "connections") == 1.0
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.05)
    assert (await _get(server.port)).startswith(b"HTTP/1.1 200")


async def test_with_admission_off_the_connection_cap_is_off_too(serve) -> None:
    server = await serve(admission=False, max_connections=2, header_timeout=5)
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
    await asyncio.sleep(0.05)
    assert (await _get(server.port)).startswith(b"HTTP/1.1 200")
    for _, writer in held:
        writer.close()


def test_a_guard_has_no_edge_until_one_is_attached() -> None:
    guard = ConnectionGuard(max_connections=10, header_timeout=1.0)
    assert guard.edge is None
    edge = EdgeShedder([])
    guard.attach_edge(edge)
    assert guard.edge is edge


def _problem(answer: bytes) -> tuple[str, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.decode(), orjson.loads(body)


@pytest.mark.parametrize(
    ("accept_language", "language", "detail"),
    [
        (None, "en", "the server is overloaded (edge); try again shortly"),
        ("ru-RU,ru;q=0.9,en;q=0.5", "ru", "сервер перегружен (edge); повторите чуть позже"),
        ("de, kk;q=0.8", "kk", "сервер шамадан тыс жүктелген (edge); сәлден соң қайталаңыз"),
        ("fr", "en", "the server is overloaded (edge); try again shortly"),
    ],
)
def test_the_edges_refusal_answers_in_the_language_the_head_prefers(
    accept_language: str | None, language: str, detail: str
) -> None:
    extra = f"Accept-Language: {accept_language}\r\n" if accept_language else ""
    head, body = _problem(shed_at_edge(f"GET / HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()))
    assert f"Content-Language: {language}" in head
    assert body["type"] == "/problems/overloaded"
    assert body["detail"] == detail
    assert body["title"] == translate("Service unavailable", language)


def test_the_accept_language_header_name_is_matched_in_any_case() -> None:
    head, body = _problem(shed_at_edge(b"GET / HTTP/1.1\r\nACCEPT-language: ru\r\n\r\n"))
    assert "Content-Language: ru" in head
    assert body["title"] == "Сервис временно недоступен"


def test_a_problem_answered_before_any_whole_head_has_a_title_and_closes() -> None:
    head, body = _problem(TOO_MANY_CONNECTIONS)
    assert head.startswith("HTTP/1.1 503 Service Unavailable")
    assert "Connection: close" in head
    assert "Content-Language: en" in head
    assert body == {
        "type": "/problems/connections",
        "title": "Service unavailable",
        "status": 503,
        "detail": "The server has too many open connections; try again shortly.",
    }
    assert _problem(HEAD_TIMEOUT)[1]["title"] == "Request timeout"


def test_made_up_accept_language_values_cannot_grow_the_remembered_answers_past_their_bound() -> (
    None
):
    for n in range(400):
        head, _ = _problem(
            shed_at_edge(f"GET / HTTP/1.1\r\nAccept-Language: x{n}, ru\r\n\r\n".encode())
        )
        assert "Content-Language: ru" in head
    assert len(connections._NEGOTIATED) == connections._NEGOTIATED_MAX


async def test_connections_past_the_per_address_cap_get_a_canned_429(serve) -> None:
    server = await serve(max_connections_per_address=2, header_timeout=5)
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
    await asyncio.sleep(0.05)
    refused = await _get(server.port)
    head, body = _problem(refused)
    assert head.startswith("HTTP/1.1 429 Too Many Requests")
    assert "Retry-After: 1" in head
    assert "Connection: close" in head
    assert body["type"] == "/problems/address-connections"
    assert _refusals(server, "address_connections") == 1.0
    held[0][1].close()
    await asyncio.sleep(0.05)
    assert (await _get(server.port)).startswith(b"HTTP/1.1 200")
    held[1][1].close()


async def test_a_trusted_proxy_is_not_capped_per_address(serve) -> None:
    server = await serve(
        max_connections_per_address=2, header_timeout=5, trusted_proxies=["127.0.0.1/32"]
    )
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert (await _get(server.port)).startswith(b"HTTP/1.1 200")
    for _, writer in held:
        writer.close()


SLOW_BODY = {"body_grace": 0.2, "body_min_rate": 100.0, "header_timeout": 5}


async def test_a_late_body_is_answered_408_and_its_connection_cut(serve, slow_bodies) -> None:
    server = await serve(**SLOW_BODY)
    request = await slow_bodies(server.port, headers=citizen(1))
    assert status_of(await request.answer(within=5)) == 408
    assert await request.closed(within=3) == b""
    assert _refusals(server, "body_timeout") == 1.0


async def test_a_late_body_that_nothing_reads_is_cut_at_its_deadline(serve, slow_bodies) -> None:
    server = await serve(**SLOW_BODY)
    # /healthz takes no body: it is answered at once, and aiohttp would then wait for the
    # rest of the body for its lingering time (10 s) before closing.
    request = await slow_bodies(server.port, path="/healthz")
    answer = await request.closed(within=3)
    assert status_of(answer) == 405
    assert _refusals(server, "body_timeout") == 1.0


async def test_a_head_is_cut_at_the_whole_request_deadline_when_that_is_shorter(serve) -> None:
    server = await serve(request_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # never finishes its head
    answer = await asyncio.wait_for(reader.read(), timeout=3)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
    writer.close()


@pytest.mark.slow
async def test_250_slow_bodies_leave_other_clients_served_and_are_all_cut(
    serve, slow_bodies
) -> None:
    # Slots are the only thing measured here: a fixed limit, and delay-based shedding far off,
    # so that a busy test machine's latency cannot refuse the ordinary clients instead.
    tolerant = {
        "fixed_limit": 128,
        "edge_shedding": False,
        "sojourn_target": 10.0,
        "codel_target": 5.0,
        "codel_interval": 10.0,
        "default_deadline": 30.0,
    }
    server = await serve(
        control=tolerant,
        trusted_proxies=["127.0.0.1/32"],
        body_grace=0.5,
        body_min_rate=100.0,
        header_timeout=5,
    )
    url = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async with session.post(f"{url}{BASE}", json=PETITION, headers=citizen(1)) as filed:
            petition_id = (await filed.json())["id"]
        async with session.post(
            f"{url}{BASE}/{petition_id}/moderation",
            json={"decision": "approve"},
            headers=moderator(),
        ) as approved:
            assert approved.status == 200
        # The attack: each connection from its own address, with its own citizen's token.
        slow = [
            await slow_bodies(
                server.port, headers={"X-Forwarded-For": f"10.1.0.{n % 250}", **citizen(1000 + n)}
            )
            for n in range(250)
        ]

        async def ordinary(n: int) -> int:
            headers = {"X-Forwarded-For": f"10.2.0.{n}"}
            if n % 2:
                request = session.post(
                    f"{url}{BASE}/{petition_id}/signatures",
                    headers={**headers, **citizen(2000 + n)},
                )
            else:
                request = session.get(f"{url}{BASE}", headers=headers)
            async with request as response:
                return response.status

        statuses = await asyncio.gather(*(ordinary(n) for n in range(100)))
        assert sum(200 <= status < 300 for status in statuses) >= 95
        answers = await asyncio.gather(*(request.answer(within=10) for request in slow))
        closed = await asyncio.gather(*(request.closed(within=10) for request in slow))
    assert [status_of(answer) for answer in answers] == [408] * 250
    assert closed == [b""] * 250


class _ClosingTransport:
    """A transport that stays open after close(), as one whose client reads nothing does."""

    def __init__(self) -> None:
        self.closing = self.aborted = False

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.aborted = True


def test_a_cut_connection_still_open_at_the_next_cut_is_aborted() -> None:
    guard = ConnectionGuard(max_connections=10, header_timeout=1.0)
    connection = GuardedConnection(guard, make_inner=lambda: pytest.fail("never built"))
    transport = _ClosingTransport()
    connection.transport = transport  # type: ignore[assignment]  # a stand-in
    assert connection.cut() is True
    assert (transport.closing, transport.aborted) == (True, False)
    assert connection.cut() is False
    assert transport.aborted


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


def _sample(server: RunningServer, reason: str, priority: str) -> float | None:
    return server.app[observability_keys.METRICS].registry.get_sample_value(
        "qatysu_admission_rejected_total", {"reason": reason, "priority": priority}
    )


def _accept_with_age(
    monkeypatch: pytest.MonkeyPatch, age: float | None, *, standing: bool = True
) -> None:
    """Every connection accepted from now on reports that its request waited ``age`` s, and
    the observer finds a standing wait in the kernel's queue, or none."""
    monkeypatch.setattr(KernelQueueProbe, "on_accept", lambda probe, transport: age)
    monkeypatch.setattr(StandingWait, "update", lambda wait, now, length: standing)


async def test_a_first_request_too_old_in_the_kernel_gets_a_kept_alive_503(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve()
    _accept_with_age(monkeypatch, 0.5)
    await _observed_standing(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /api/v1/petitions/nope HTTP/1.1\r\nHost: t\r\n\r\n")
    refused = await _answer(reader)
    assert refused.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"Retry-After: 1" in refused
    assert b"Connection: close" not in refused
    # Only the request that waited in the kernel was old; the next one on the connection is not.
    writer.write(b"GET /api/v1/petitions/nope HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await _answer(reader)).startswith(b"HTTP/1.1 404")
    writer.close()
    assert _sample(server, "kernel_age", "normal") == 1.0


async def _observed_standing(server: RunningServer) -> None:
    """Wait for the observer to tell the edge that a wait stands in the kernel's queue."""
    edge = server.app[http_keys.GUARD].edge
    assert edge is not None
    for _ in range(100):
        if edge.kernel_queue_standing:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the observer never found a standing wait")


async def test_an_old_first_request_is_served_while_no_wait_stands_in_the_kernel(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve()
    _accept_with_age(monkeypatch, 0.5, standing=False)
    await asyncio.sleep(0.05)  # observer ticks: each finds no standing wait
    assert (await _get(server.port, "/api/v1/petitions/nope")).startswith(b"HTTP/1.1 404")
    assert not _sample(server, "kernel_age", "normal")


async def test_a_first_request_young_enough_in_the_kernel_is_served(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve()
    _accept_with_age(monkeypatch, 0.004)
    assert (await _get(server.port, "/api/v1/petitions/nope")).startswith(b"HTTP/1.1 404")
    assert not _sample(server, "kernel_age", "normal")


async def test_operations_routes_are_never_refused_by_kernel_age(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve()
    _accept_with_age(monkeypatch, 5.0)
    assert (await _get(server.port, "/healthz")).startswith(b"HTTP/1.1 200")


async def _saturated_writes(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Storage reports saturation; wait for the observer to tell the edge."""
    monkeypatch.setattr(Writer, "pressure", property(lambda writer: 1.0))
    edge = server.app[http_keys.GUARD].edge
    assert edge is not None
    for _ in range(100):
        if edge.writes_saturated:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the observer never marked writes saturated")


SIGN = "POST /api/v1/petitions/nope/signatures HTTP/1.1\r\nHost: t\r\nContent-Length: {n}\r\n\r\n"


async def test_a_critical_write_with_its_whole_body_is_refused_at_the_edge_and_kept_alive(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve()
    await _saturated_writes(server, monkeypatch)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(SIGN.format(n=2).encode() + b"{}")
    refused = await _answer(reader)
    assert refused.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"Retry-After: 1" in refused
    assert b"Connection: close" not in refused
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await _answer(reader)).startswith(b"HTTP/1.1 200")
    writer.close()
    assert _sample(server, "edge", "critical") == 1.0


async def test_a_critical_write_whose_body_has_not_arrived_is_refused_and_closed(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve()
    await _saturated_writes(server, monkeypatch)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(SIGN.format(n=100).encode() + b'{"a"')
    answer = await asyncio.wait_for(reader.read(), timeout=2)
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"Connection: close" in answer
    assert b"Retry-After: 1" in answer
    writer.close()


async def test_a_critical_write_reaches_the_application_while_writes_are_not_saturated(
    serve,
) -> None:
    server = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(SIGN.format(n=2).encode() + b"{}")
    answer = await _answer(reader)
    assert not answer.startswith(b"HTTP/1.1 503")
    writer.close()
    assert not _sample(server, "edge", "critical")


async def test_each_accepted_connections_kernel_wait_is_counted_and_the_listener_is_probed(
    serve,
) -> None:
    server = await serve(listen_backlog=100)
    assert (await _get(server.port, "/healthz")).startswith(b"HTTP/1.1 200")
    registry = server.app[observability_keys.METRICS].registry
    assert registry.get_sample_value("qatysu_admission_kernel_age_seconds_count") == 1.0
    # The probe reads the real listener, whose backlog is the setting's.
    assert server.app[http_keys.GUARD].kernel.queues() == [AcceptQueue(length=0, backlog=100)]
