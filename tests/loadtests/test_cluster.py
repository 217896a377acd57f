"""The local cluster: HAProxy, two instances, shared PostgreSQL and Redis, Prometheus.

One cluster serves the whole module. Through the proxy, signatures land exactly once; the
per-citizen rate limit is one budget across both instances; Prometheus scrapes both; and when
one instance is killed in a signing flood, nothing it acknowledged is lost and the proxy keeps
serving reads from the other.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from core.identity.national_id import national_id_hash
from loadtests.seeding import call, citizen_token, create_approved_petition
from loadtests.servers import BENCH_SECRET_ENV
from plugins.kazakhstan.iin import synthetic_iin
from tests.support.services import service_unavailable

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SECRET = BENCH_SECRET_ENV["QATYSU_JWT_SECRET"]
IIN_SECRET = BENCH_SECRET_ENV["QATYSU_IDENTITY__IIN_HASH_SECRET"].encode()
SIGN_BURST = 5
FLOOD_SIGNERS = 32


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_available: str | None) -> Iterator:
    from loadtests.cluster import start_cluster

    if postgres_available is not None:
        service_unavailable(postgres_available)
    workdir: Path = tmp_path_factory.mktemp("cluster")
    started = start_cluster(
        workdir,
        scrape_interval="1s",
        # A tiny signing budget that no refill can change during the test: exactly SIGN_BURST.
        extra_env={
            "QATYSU_ADMISSION__RATE_OVERRIDES": json.dumps(
                {"petition-sign": {"rate": 0.001, "burst": SIGN_BURST}}
            )
        },
    )
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def petition(cluster) -> str:
    return create_approved_petition(cluster.url, SECRET)


def stored_hashes(cluster, petition_id: str) -> list[str]:
    rows = cluster.database.query(
        "SELECT citizen_hash FROM petition_signatures WHERE petition_id = $1", petition_id
    )
    return [str(row[0]) for row in rows]


def stored_count(cluster, petition_id: str) -> int:
    (row,) = cluster.database.query(
        "SELECT signature_count FROM petitions WHERE id = $1", petition_id
    )
    return int(row[0])


def sign(base_url: str, petition_id: str, number: int) -> tuple[int, object]:
    return call(
        base_url,
        "POST",
        f"/api/v1/petitions/{petition_id}/signatures",
        token=citizen_token(SECRET, number, name="Cluster Signer"),
    )


def test_prometheus_scrapes_both_instances(cluster) -> None:
    assert cluster.prometheus is not None
    query = urllib.parse.urlencode({"query": 'up{job="qatysu"}'})
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(f"{cluster.prometheus.url}/api/v1/query?{query}") as answer:
            results = json.loads(answer.read())["data"]["result"]
        up = {r["metric"]["instance"]: r["value"][1] for r in results}
        if len(up) == 2 and set(up.values()) == {"1"}:
            break
        assert time.monotonic() < deadline, f"Prometheus does not see both instances up: {up}"
        time.sleep(0.5)
    assert set(up) == {f"127.0.0.1:{server.port}" for server in cluster.instances}


def test_signatures_through_the_proxy_land_exactly_once(cluster, petition: str) -> None:
    citizens = range(200_000, 200_020)
    first = [sign(cluster.url, petition, n)[0] for n in citizens]
    again = [sign(cluster.url, petition, n) for n in citizens]

    assert first == [201] * len(citizens)
    assert [status for status, _ in again] == [200] * len(citizens)
    assert all(body["already_signed"] is True for _, body in again)
    hashes = stored_hashes(cluster, petition)
    wanted = {national_id_hash(synthetic_iin(n), IIN_SECRET) for n in citizens}
    assert sorted(h for h in hashes if h in wanted) == sorted(wanted)
    assert stored_count(cluster, petition) == len(hashes)


def test_a_citizens_rate_limit_is_one_budget_across_both_instances(cluster, petition: str) -> None:
    statuses = Counter()
    answered_by = Counter()
    for _attempt, server in zip(range(4 * SIGN_BURST), itertools.cycle(cluster.instances)):
        status, _ = sign(server.url, petition, 300_000)
        statuses[status] += 1
        answered_by[server.port, status == 429] += 1

    assert statuses == {201: 1, 200: SIGN_BURST - 1, 429: 3 * SIGN_BURST}
    # Both instances refused: each saw the budget the other had spent.
    assert all(answered_by[server.port, True] > 0 for server in cluster.instances)


async def _flood(url: str, numbers: Iterator[int], acknowledged: set[int], stop: asyncio.Event):
    async def signer(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            n = next(numbers)
            token = citizen_token(SECRET, n, name="Flood Signer")
            try:
                async with session.post(
                    url, headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError):
                continue
            if response.status == 201:
                acknowledged.add(n)

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(signer(session) for _ in range(FLOOD_SIGNERS)))


def test_killing_an_instance_mid_flood_loses_no_acknowledged_signature(
    cluster, petition: str
) -> None:
    acknowledged: set[int] = set()
    url = f"{cluster.url}/api/v1/petitions/{petition}/signatures"

    async def scenario() -> list[int]:
        stop = asyncio.Event()
        flood = asyncio.create_task(_flood(url, itertools.count(400_000), acknowledged, stop))
        await asyncio.sleep(2.0)
        before = len(acknowledged)
        await asyncio.to_thread(cluster.kill, 0)
        await asyncio.sleep(3.0)
        stop.set()
        await flood
        assert before > 0, "nothing was acknowledged before the kill"
        assert len(acknowledged) > before, "nothing was acknowledged after the kill"
        reads = []
        for _ in range(20):
            status, _ = await asyncio.to_thread(
                call, cluster.url, "GET", f"/api/v1/petitions/{petition}"
            )
            reads.append(status)
        return reads

    reads = asyncio.run(scenario())

    assert reads == [200] * 20
    hashes = set(stored_hashes(cluster, petition))
    missing = {
        n for n in acknowledged if national_id_hash(synthetic_iin(n), IIN_SECRET) not in hashes
    }
    assert missing == set()
    assert stored_count(cluster, petition) == len(hashes)
