"""The fast lane on a real listening server: hot reads answered before parsing, as HTTP says."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from core.admission import keys as admission_keys
from core.host.server import start_server
from core.http import keys as http_keys
from core.storage import keys as storage_keys
from tests.support.identities import citizen
from tests.support.petitions import petition_url
from tests.support.raw_http import connect, parse, read_response, request

# Headers whose values differ between any two answers, lane or not.
PER_ANSWER = {"Date", "X-Request-Id", "RateLimit"}
# The access log on, as shipped: its lines say which answers the lane gave (``lane_log``).
LOGGED = {"access_log": True}


async def test_a_repeated_anonymous_read_is_answered_by_the_lane_as_the_ordinary_path_would(
    serve, petition_on, lane_log
) -> None:
    server = await serve(server=LOGGED)
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    [ordinary] = await connection.exchange(request("GET", target))
    assert lane_log.count == 0
    [laned] = await connection.exchange(request("GET", target))
    assert lane_log.count == 1
    assert laned[0] == ordinary[0] == 200
    assert laned[2] == ordinary[2]
    assert {k: v for k, v in laned[1].items() if k not in PER_ANSWER} == {
        k: v for k, v in ordinary[1].items() if k not in PER_ANSWER
    }
    assert set(laned[1]) == set(ordinary[1])
    connection.close()


async def test_the_lane_answers_if_none_match_with_304_and_head_without_a_body(
    serve, petition_on, lane_log
) -> None:
    server = await serve(server=LOGGED)
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    [(_, headers, _)] = await connection.exchange(request("GET", target))
    etag = headers["ETag"]
    [not_modified] = await connection.exchange(request("GET", target, f"If-None-Match: {etag}"))
    [head] = await connection.exchange(request("HEAD", target), head_only=True)
    [other] = await connection.exchange(request("GET", target, 'If-None-Match: "elsewhere"'))
    assert lane_log.count == 3
    assert not_modified[0] == 304
    assert not_modified[1]["ETag"] == etag
    assert "Content-Length" not in not_modified[1]
    assert head[0] == 200
    assert head[1]["Content-Length"] == headers["Content-Length"]
    assert other[0] == 200
    assert int(other[1]["Content-Length"]) == len(other[2])
    connection.close()


async def test_pipelined_reads_and_writes_are_answered_in_order(
    serve, petition_on, lane_log
) -> None:
    server = await serve(server=LOGGED)
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    await connection.exchange(request("GET", target))
    token = citizen(7)["Authorization"]
    pipelined = (
        request("GET", target, "X-Request-Id: first")
        + request("POST", petition_url(petition_id, "/signatures"), f"Authorization: {token}")
        + request("GET", target, "X-Request-Id: third")
        + request("GET", target, "X-Request-Id: fourth")
    )
    answers = await connection.exchange(pipelined, count=4)
    assert [status for status, _, _ in answers] == [200, 201, 200, 200]
    assert answers[0][1]["X-Request-Id"] == "first"
    assert b"signature_count" in answers[1][2]
    assert [answers[2][1]["X-Request-Id"], answers[3][1]["X-Request-Id"]] == ["third", "fourth"]
    # Once aiohttp has answered everything it was handed, the lane serves this connection again.
    served = lane_log.count
    await connection.exchange(request("GET", target))
    assert lane_log.count == served + 1
    connection.close()


async def test_a_read_never_overtakes_a_write_still_waiting_for_its_commit(
    serve, petition_on
) -> None:
    server = await serve()
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    await connection.exchange(request("GET", target))
    writer = server.app[storage_keys.WRITER]
    commit, release = writer._commit, asyncio.Event()

    async def held_commit(batch: Any) -> None:
        await release.wait()
        await commit(batch)

    writer._commit = held_commit  # type: ignore[method-assign]
    token = citizen(8)["Authorization"]
    connection.writer.write(
        request("POST", petition_url(petition_id, "/signatures"), f"Authorization: {token}")
    )
    await asyncio.sleep(0.1)
    connection.writer.write(request("GET", target))
    await asyncio.sleep(0.1)
    release.set()
    first = parse(await read_response(connection.reader))
    second = parse(await read_response(connection.reader))
    assert [first[0], second[0]] == [201, 200]
    connection.close()


async def test_connection_close_is_honoured_after_the_answer(serve, petition_on) -> None:
    server = await serve()
    petition_id = await petition_on(server)
    connection = await connect(server)
    await connection.exchange(request("GET", petition_url(petition_id)))
    connection.writer.write(request("GET", petition_url(petition_id), "Connection: close"))
    status, headers, _ = parse(await read_response(connection.reader))
    assert (status, headers["Connection"]) == (200, "close")
    assert await asyncio.wait_for(connection.reader.read(), timeout=2) == b""
    connection.close()


async def test_the_lane_never_serves_longer_than_the_micro_cache_holds_the_answer(
    serve, petition_on, lane_log
) -> None:
    server = await serve(server=LOGGED, cache={"ttl_seconds": 0.3})
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    [(_, _, before)] = await connection.exchange(request("GET", target))
    async with aiohttp.ClientSession() as session:
        signed = await session.post(
            f"http://127.0.0.1:{server.port}{petition_url(petition_id, '/signatures')}",
            headers=citizen(9),
        )
        assert signed.status == 201
    await asyncio.sleep(0.4)
    served = lane_log.count
    [(status, _, after)] = await connection.exchange(request("GET", target))
    assert status == 200
    assert lane_log.count == served  # expired: the ordinary path rendered it again
    assert b'"signature_count":1' in after
    assert b'"signature_count":0' in before
    connection.close()


async def test_requests_with_credentials_or_a_body_take_the_ordinary_path(
    serve, petition_on, lane_log
) -> None:
    server = await serve(server=LOGGED)
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    await connection.exchange(request("GET", target))
    await connection.exchange(
        request("GET", target, f"Authorization: {citizen(3)['Authorization']}")
    )
    await connection.exchange(request("GET", target, "Content-Length: 2") + b"{}")
    await connection.exchange(request("GET", target, "X-Folded: a", " b"))
    assert lane_log.count == 0
    connection.close()
    plain = await connect(server)
    await plain.exchange(request("GET", target))
    assert lane_log.count == 1  # the same read without them is the lane's
    plain.close()


async def test_lane_answers_are_counted_and_limited_like_ordinary_ones(
    serve, petition_on, lane_log
) -> None:
    server = await serve(
        server=LOGGED, admission={"rate_overrides": {"public-read": {"rate": 0.01, "burst": 3}}}
    )
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    answers = [(await connection.exchange(request("GET", target)))[0] for _ in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert lane_log.count == 2
    assert [headers["RateLimit"] for _, headers, _ in answers[:3]] == [
        '"public-read";r=2;t=100',
        '"public-read";r=1;t=200',
        '"public-read";r=0;t=300',
    ]
    assert answers[3][1]["Retry-After"] == "100"
    connection.close()
    async with aiohttp.ClientSession() as session:
        metrics = await (await session.get(f"http://127.0.0.1:{server.port}/metrics")).text()
    route = 'method="GET",route="/api/v1/petitions/{id}"'
    assert f'qatysu_http_requests_total{{{route},status="200"}} 3.0' in metrics
    assert f'qatysu_http_requests_total{{{route},status="429"}} 1.0' in metrics


async def test_a_client_behind_a_trusted_proxy_is_limited_by_its_own_address(
    serve, petition_on, lane_log
) -> None:
    server = await serve(
        server={**LOGGED, "trusted_proxies": ["127.0.0.1/32"]},
        admission={"rate_overrides": {"public-read": {"rate": 0.01, "burst": 1}}},
    )
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    statuses = [
        (await connection.exchange(request("GET", target, f"X-Forwarded-For: 10.0.0.{n}")))[0][0]
        for n in (1, 2, 3, 1)
    ]
    assert statuses == [200, 200, 200, 429]
    assert lane_log.count == 2
    connection.close()


async def test_connections_only_the_lane_served_are_closed_when_the_server_stops(
    make_settings, petition_on, lane_log
) -> None:
    server = await start_server(
        make_settings(server={"port": 0, **LOGGED}, admission={"enabled": True})
    )
    petition_id = await petition_on(server)
    warm = await connect(server)
    await warm.exchange(request("GET", petition_url(petition_id)))
    laned = await connect(server)
    await laned.exchange(request("GET", petition_url(petition_id)))
    assert lane_log.count == 1
    await asyncio.wait_for(server.drain(), timeout=10)
    assert await asyncio.wait_for(laned.reader.read(), timeout=2) == b""
    warm.close()
    laned.close()


async def test_with_admission_off_there_is_no_lane(serve) -> None:
    server = await serve(admission={"enabled": False})
    assert http_keys.FAST_LANE not in server.app


async def test_while_the_edge_refuses_a_hot_read_is_refused_before_the_lane(
    serve, petition_on, lane_log
) -> None:
    server = await serve(server=LOGGED)
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    await connection.exchange(request("GET", target))
    edge = server.app[http_keys.GUARD].edge
    assert edge is not None
    server.app[admission_keys.ADMISSION].pie.probability = edge.probability = 1.0
    edge.draw = lambda: 0.0
    [(refused, headers, _)] = await connection.exchange(request("GET", target))
    edge.draw = lambda: 1.0
    [(served, _, _)] = await connection.exchange(request("GET", target))
    assert (refused, headers["Retry-After"], served) == (503, "1", 200)
    assert lane_log.count == 1
    connection.close()


@pytest.mark.parametrize(
    "extra",
    [("X-Note: a\x00b",), ("Host: other",), ("X-Note: a\rb",), ("Bad Name: a",)],
    ids=["nul-in-value", "second-host", "lone-cr", "space-in-name"],
)
async def test_a_head_aiohttp_refuses_gets_its_400_not_the_lanes_answer(
    serve, petition_on, lane_log, extra: tuple[str, ...]
) -> None:
    server = await serve(server=LOGGED)
    petition_id = await petition_on(server)
    target = petition_url(petition_id)
    warm = await connect(server)
    await warm.exchange(request("GET", target))
    await warm.exchange(request("GET", target))
    served = lane_log.count
    assert served == 1
    connection = await connect(server)
    try:
        [(status, _, _)] = await connection.exchange(request("GET", target, *extra))
    finally:
        connection.close()
        warm.close()
    assert status == 400
    assert lane_log.count == served


async def test_the_lane_and_the_ordinary_path_name_the_server_without_versions(
    serve, petition_on, lane_log
) -> None:
    server = await serve(server=LOGGED)
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    [ordinary] = await connection.exchange(request("GET", target))
    [laned] = await connection.exchange(request("GET", target))
    assert lane_log.count == 1
    assert ordinary[1]["Server"] == laned[1]["Server"] == "Qatysu"
    connection.close()


async def test_a_cross_origin_read_takes_the_ordinary_path_which_adds_cors_headers(
    serve, petition_on, lane_log
) -> None:
    server = await serve(server={**LOGGED, "cors_origins": ["https://portal.example.kz"]})
    petition_id = await petition_on(server)
    connection = await connect(server)
    target = petition_url(petition_id)
    await connection.exchange(request("GET", target))
    [answer] = await connection.exchange(
        request("GET", target, "Origin: https://portal.example.kz")
    )
    assert lane_log.count == 0
    assert answer[1]["Access-Control-Allow-Origin"] == "https://portal.example.kz"
    await connection.exchange(request("GET", target))
    assert lane_log.count == 1  # the same read without Origin is the lane's
    connection.close()
