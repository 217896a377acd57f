"""Edge shedding: which requests may be refused before parsing, how often, and how it adapts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from core.admission import keys as admission_keys
from core.admission.edge import EdgeShedder
from core.host.server import RunningServer, start_server
from core.http import keys as http_keys
from core.plugin_host.priority import Priority
from core.plugin_host.routing import OPERATIONS, RoutePolicy, RouteSpec


async def _handler(request: object) -> object:  # never called: only the specs are read
    raise AssertionError


def spec(method: str, path: str, policy: RoutePolicy) -> RouteSpec:
    return RouteSpec(
        method=method, path=path, handler=_handler, name=path, summary="", policy=policy
    )


ROUTES = [
    spec("GET", "/healthz", OPERATIONS),
    spec("GET", "/api/v1/petitions", RoutePolicy(priority=Priority.SHEDDABLE)),
    spec("GET", "/api/v1/petitions/{id}", RoutePolicy(priority=Priority.NORMAL)),
    spec("POST", "/api/v1/petitions/{id}/signatures", RoutePolicy(priority=Priority.CRITICAL)),
]


def head(method: str, target: str) -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


def test_requests_are_classified_by_their_route_template() -> None:
    edge = EdgeShedder(ROUTES)
    assert edge.classify(b"GET", b"/healthz") is None
    assert edge.classify(b"GET", b"/api/v1/petitions") is Priority.SHEDDABLE
    assert edge.classify(b"GET", b"/api/v1/petitions/abc") is Priority.NORMAL
    assert edge.classify(b"POST", b"/api/v1/petitions/abc/signatures") is Priority.CRITICAL
    assert edge.classify(b"GET", b"/no/such/route") is Priority.SHEDDABLE


def test_nothing_is_refused_while_the_probability_is_zero() -> None:
    edge = EdgeShedder(ROUTES, random_draw=lambda: 0.0)
    assert edge.refuse(head("GET", "/api/v1/petitions/abc")) is None


def test_normal_work_is_refused_at_the_probability_and_sheddable_at_twice_it() -> None:
    draw = 0.3
    edge = EdgeShedder(ROUTES, random_draw=lambda: draw)
    edge.probability = 0.2
    assert edge.refuse(head("GET", "/api/v1/petitions/abc?x=1")) is None
    assert edge.refuse(head("GET", "/api/v1/petitions?sort=signatures")) is Priority.SHEDDABLE
    draw = 0.1
    assert edge.refuse(head("GET", "/api/v1/petitions/abc")) is Priority.NORMAL


def test_critical_and_operations_requests_are_never_refused_at_the_edge() -> None:
    edge = EdgeShedder(ROUTES, random_draw=lambda: 0.0)
    edge.probability = 0.98
    assert edge.refuse(head("POST", "/api/v1/petitions/abc/signatures")) is None
    assert edge.refuse(head("GET", "/healthz")) is None


def test_a_request_older_than_the_age_target_is_refused_whatever_the_probability() -> None:
    refused: list[Priority] = []
    edge = EdgeShedder(ROUTES, random_draw=lambda: 1.0, age_target=0.020, on_aged=refused.append)
    edge.kernel_queue_standing = True
    assert edge.refuse_aged(head("GET", "/api/v1/petitions/abc"), 0.020) is None
    assert edge.refuse_aged(head("GET", "/api/v1/petitions/abc"), 0.021) is Priority.NORMAL
    assert edge.refuse_aged(head("HEAD", "/api/v1/petitions"), 0.5) is Priority.SHEDDABLE
    assert edge.refuse_aged(head("GET", "/healthz"), 5.0) is None
    assert refused == [Priority.NORMAL, Priority.SHEDDABLE]


def test_critical_work_is_refused_by_age_only_past_its_own_bound() -> None:
    signature = head("POST", "/api/v1/petitions/abc/signatures")
    edge = EdgeShedder(ROUTES, age_target=0.020, critical_age=0.100)
    edge.kernel_queue_standing = True
    assert edge.refuse_aged(signature, 0.050) is None
    assert edge.refuse_aged(signature, 0.101) is Priority.CRITICAL
    without_bound = EdgeShedder(ROUTES, age_target=0.020)
    without_bound.kernel_queue_standing = True
    assert without_bound.refuse_aged(signature, 10.0) is None


def test_an_old_request_is_not_refused_while_no_wait_stands_in_the_kernel() -> None:
    edge = EdgeShedder(ROUTES, age_target=0.020)
    assert edge.refuse_aged(head("GET", "/api/v1/petitions"), 10.0) is None
    edge.kernel_queue_standing = True
    assert edge.refuse_aged(head("GET", "/api/v1/petitions"), 10.0) is Priority.SHEDDABLE


def test_without_an_age_target_nothing_is_refused_by_age() -> None:
    edge = EdgeShedder(ROUTES)
    edge.kernel_queue_standing = True
    assert edge.refuse_aged(head("GET", "/api/v1/petitions"), 10.0) is None


def test_critical_writes_are_refused_at_the_edge_only_while_writes_are_saturated() -> None:
    refused: list[Priority] = []
    edge = EdgeShedder(ROUTES, random_draw=lambda: 1.0, on_refused=refused.append)
    signature = head("POST", "/api/v1/petitions/abc/signatures")
    assert edge.refuse(signature) is None
    edge.writes_saturated = True
    assert edge.refuse(signature) is Priority.CRITICAL
    # Saturated storage says nothing about reads, which the probability alone decides.
    assert edge.refuse(head("GET", "/api/v1/petitions/abc")) is None
    assert refused == [Priority.CRITICAL]


@pytest.fixture
async def server(make_settings) -> AsyncIterator[RunningServer]:
    settings = make_settings(server={"port": 0}, admission={"enabled": True})
    running = await start_server(settings)
    yield running
    await running.drain()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bytes:
    writer.write(request)
    head_bytes = await reader.readuntil(b"\r\n\r\n")
    length = int(head_bytes.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head_bytes + await reader.readexactly(length)


async def test_a_refused_read_gets_a_canned_503_and_the_connection_stays_usable(server) -> None:
    edge = server.app[http_keys.GUARD].edge
    assert edge is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    # The observer copies PIE's probability every tick; the draw decides deterministically.
    server.app[admission_keys.ADMISSION].pie.probability = edge.probability = 1.0
    edge.draw = lambda: 0.0
    refused = await _exchange(reader, writer, head("GET", "/api/v1/petitions/demo-public"))
    assert refused.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"Retry-After: 1" in refused
    assert b"Connection: close" not in refused
    assert refused.endswith(
        b'"status":503,"detail":"the server is overloaded (edge); try again shortly"}'
    )
    in_kazakh = await _exchange(
        reader,
        writer,
        head("GET", "/api/v1/petitions/demo-public").replace(
            b"\r\n\r\n", b"\r\nAccept-Language: kk, ru;q=0.5\r\n\r\n"
        ),
    )
    assert in_kazakh.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"Content-Language: kk" in in_kazakh
    assert "сәлден соң қайталаңыз".encode() in in_kazakh
    health = await _exchange(reader, writer, head("GET", "/healthz"))
    assert health.startswith(b"HTTP/1.1 200")
    edge.draw = lambda: 1.0
    served = await _exchange(reader, writer, head("GET", "/api/v1/petitions/nope"))
    assert served.startswith(b"HTTP/1.1 404")
    writer.close()
    metrics = await _metrics(server)
    assert 'qatysu_admission_rejected_total{priority="normal",reason="edge"} 2.0' in metrics


async def _metrics(server: RunningServer) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head("GET", "/metrics").replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    data = await reader.read()
    writer.close()
    return data.decode()


async def test_an_operators_brownout_sets_a_floor_under_the_edge_share(make_settings) -> None:
    running = await start_server(
        make_settings(server={"port": 0}, admission={"enabled": True, "brownout": 0.5})
    )
    try:
        edge = running.app[http_keys.GUARD].edge
        assert edge is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        edge.draw = lambda: 0.4
        await asyncio.sleep(0.05)  # a few observer ticks: PIE stays near 0, the floor holds
        refused = await _exchange(reader, writer, head("GET", "/api/v1/petitions/nope"))
        assert refused.startswith(b"HTTP/1.1 503")
        edge.draw = lambda: 0.6
        served = await _exchange(reader, writer, head("GET", "/api/v1/petitions/nope"))
        assert served.startswith(b"HTTP/1.1 404")
        assert running.app[admission_keys.ADMISSION].pie.probability < 0.4
        writer.close()
    finally:
        await running.drain()
