"""Admission through HTTP: rate limits per client, shedding with 503, operations bypass."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from core.admission import keys as admission_keys
from core.http import keys as http_keys
from core.storage import keys as storage_keys
from tests.support.admission import SlowRoutes
from tests.support.identities import citizen
from tests.support.petitions import PETITION, SMALL_FIGURES, SMALL_THRESHOLDS, petition_url
from tests.support.slowbodies import status_of

ADMISSION = {"enabled": True, "fixed_limit": 4, "queue_capacity": 2, "critical_reserve": 0.25}


async def test_one_greedy_client_is_limited_while_another_is_served(make_client) -> None:
    client = await make_client(extra_plugins=(SlowRoutes(),), admission=ADMISSION)
    greedy = [await client.get("/test/limited", headers=citizen(1)) for _ in range(5)]
    assert [r.status for r in greedy] == [200, 200, 200, 429, 429]
    other = await client.get("/test/limited", headers=citizen(2))
    assert other.status == 200
    assert other.headers["RateLimit-Policy"] == '"test-limited";q=3;w=300'
    assert other.headers["RateLimit"].startswith('"test-limited";r=2;t=')


async def test_a_rate_limited_answer_is_problem_json_with_retry_after(make_client) -> None:
    client = await make_client(extra_plugins=(SlowRoutes(),), admission=ADMISSION)
    for _ in range(3):
        await client.get("/test/limited")
    limited = await client.get("/test/limited")
    assert limited.status == 429
    assert limited.content_type == "application/problem+json"
    assert int(limited.headers["Retry-After"]) >= 1
    body = await limited.json()
    assert body["status"] == 429
    assert body["type"] == "/problems/rate-limited"
    metrics = await (await client.get("/metrics")).text()
    assert 'qatysu_ratelimit_limited_total{policy="test-limited"} 1.0' in metrics


async def test_sheddable_work_is_shed_with_503_when_slots_and_queue_are_full(make_client) -> None:
    plugin = SlowRoutes()
    client = await make_client(extra_plugins=(plugin,), admission=ADMISSION)
    # The limit is 4 with a quarter reserved for critical work: 3 sheddable requests run,
    # 2 more wait in the queue, and the sixth finds the queue full.
    held = [asyncio.ensure_future(client.get("/test/slow/sheddable")) for _ in range(5)]
    await plugin.until_started(3)
    shed = await client.get("/test/slow/sheddable")
    assert shed.status == 503
    assert shed.headers["Retry-After"] == "1" or int(shed.headers["Retry-After"]) >= 1
    assert (await shed.json())["detail"].endswith("(queue_full); try again shortly")
    plugin.release.set()
    assert [r.status for r in await asyncio.gather(*held)] == [200] * 5


async def test_critical_work_uses_the_reserved_slot_that_sheddable_work_cannot(make_client) -> None:
    plugin = SlowRoutes()
    client = await make_client(
        extra_plugins=(plugin,), admission={**ADMISSION, "queue_capacity": 0}
    )
    held = [asyncio.ensure_future(client.get("/test/slow/sheddable")) for _ in range(3)]
    await plugin.until_started(3)
    refused = await client.get("/test/slow/sheddable")
    assert refused.status == 503
    critical = asyncio.ensure_future(client.get("/test/slow/critical"))
    await plugin.until_started(4)
    plugin.release.set()
    assert (await critical).status == 200
    assert [r.status for r in await asyncio.gather(*held)] == [200] * 3


async def test_operations_routes_answer_while_everything_else_is_shed(make_client) -> None:
    plugin = SlowRoutes()
    client = await make_client(
        extra_plugins=(plugin,), admission={**ADMISSION, "queue_capacity": 0}
    )
    held = [asyncio.ensure_future(client.get("/test/slow/critical")) for _ in range(4)]
    await plugin.until_started(4)
    assert (await client.get("/test/slow/critical")).status == 503
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/metrics")).status == 200
    plugin.release.set()
    await asyncio.gather(*held)


async def test_a_request_past_its_request_timeout_is_dropped_before_its_handler(
    make_client,
) -> None:
    plugin = SlowRoutes()
    client = await make_client(extra_plugins=(plugin,), admission=ADMISSION)
    held = [asyncio.ensure_future(client.get("/test/slow/critical")) for _ in range(4)]
    await plugin.until_started(4)
    late = await client.get("/test/slow/critical", headers={"Request-Timeout": "0.05"})
    assert late.status == 503
    assert plugin.started == 4
    plugin.release.set()
    await asyncio.gather(*held)
    metrics = await (await client.get("/metrics")).text()
    assert 'qatysu_admission_rejected_total{priority="critical",reason="deadline"} 1.0' in metrics


async def test_with_admission_off_nothing_is_limited(make_client) -> None:
    client = await make_client(extra_plugins=(SlowRoutes(),), admission={"enabled": False})
    statuses = [(await client.get("/test/limited")).status for _ in range(6)]
    assert statuses == [200] * 6
    assert admission_keys.ADMISSION not in client.app


async def test_a_request_that_waited_past_its_deadline_before_admission_never_runs(
    make_client,
) -> None:
    plugin = SlowRoutes()
    client = await make_client(extra_plugins=(plugin,), admission=ADMISSION)
    guard = client.app[http_keys.GUARD]
    # Its bytes arrived three seconds ago (the loop was that late): past the 2 s deadline.
    guard.arrival = lambda transport: time.monotonic() - 3.0  # type: ignore[method-assign]
    late = await client.get("/test/slow/critical")
    assert late.status == 503
    assert (await late.json())["detail"] == (
        "the server is overloaded (deadline); try again shortly"
    )
    assert plugin.started == 0
    assert client.app[admission_keys.ADMISSION].sojourn.take_mean(time.monotonic()) >= 3.0


async def test_sojourn_time_drives_the_edge_drop_probability(make_client) -> None:
    client = await make_client(extra_plugins=(SlowRoutes(),), admission=ADMISSION)
    admission = client.app[admission_keys.ADMISSION]
    assert admission.edge is not None
    for _ in range(40):
        admission.sojourn.add(0.5)
        await asyncio.sleep(0.02)
    peak = admission.pie.probability
    assert peak > 0.0
    assert admission.edge.probability == peak
    async with asyncio.timeout(10):
        while admission.pie.probability > peak / 2:  # noqa: ASYNC110 - the observer's own pace
            await asyncio.sleep(0.05)
    assert admission.edge.probability <= peak / 2


async def test_a_write_gives_its_slot_back_while_it_waits_for_the_commit(
    make_client, approved_petition, sign
) -> None:
    client = await make_client(
        admission={"enabled": True, "fixed_limit": 1, "queue_capacity": 0},
        kazakhstan=SMALL_THRESHOLDS,
        petitions=SMALL_FIGURES,
    )
    petition = await approved_petition(client)
    writer = client.app[storage_keys.WRITER]
    commit, committing, release = writer._commit, asyncio.Event(), asyncio.Event()

    async def held_commit(batch: Any) -> None:
        committing.set()
        await release.wait()
        await commit(batch)

    writer._commit = held_commit  # type: ignore[method-assign]
    signing = asyncio.ensure_future(sign(client, petition["id"], 5))
    await committing.wait()
    read = await client.get(petition_url(petition["id"]))
    assert read.status == 200
    assert client.app[admission_keys.ADMISSION].controller.total_inflight == 0
    release.set()
    assert (await signing).status == 201


async def test_slow_bodies_hold_no_slot_while_other_clients_are_served(
    make_client, slow_bodies
) -> None:
    client = await make_client(
        admission=ADMISSION, server={"body_grace": 0.5, "body_min_rate": 100.0}
    )
    # Twice as many bodies as there are slots, each from its own citizen, none ever finished.
    slow = [await slow_bodies(client.server.port, headers=citizen(n)) for n in range(1, 9)]
    await asyncio.sleep(0.1)
    assert client.app[admission_keys.ADMISSION].controller.total_inflight == 0
    reads = [await client.get("/api/v1/petitions") for _ in range(5)]
    filed = await client.post("/api/v1/petitions", json=PETITION, headers=citizen(100))
    assert [r.status for r in reads] == [200] * 5
    assert filed.status == 201
    answers = await asyncio.gather(*(request.answer(within=5) for request in slow))
    assert [status_of(answer) for answer in answers] == [408] * 8


async def test_time_spent_receiving_a_body_is_not_charged_to_the_admission_deadline(
    make_client, slow_bodies
) -> None:
    plugin = SlowRoutes()
    client = await make_client(
        extra_plugins=(plugin,),
        admission={"enabled": True, "fixed_limit": 1, "default_deadline": 0.4, "codel_interval": 2},
    )
    held = asyncio.ensure_future(client.get("/test/slow/critical"))
    await plugin.until_started(1)
    body = orjson.dumps(PETITION)
    request = await slow_bodies(
        client.server.port, headers=citizen(1), announced=len(body), sent=body[:20]
    )
    # The rest comes in six pieces over 0.6 s: well within the body's own deadline, but past
    # the 0.4 s that admission gives a request to start, counted from its arrival.
    rest = body[20:]
    step = -(-len(rest) // 6)
    for start in range(0, len(rest), step):
        await asyncio.sleep(0.1)
        await request.send(rest[start : start + step])
    await asyncio.sleep(0.1)  # the whole request now waits for the one slot
    plugin.release.set()
    assert (await held).status == 200
    assert status_of(await request.answer(within=5)) == 201
