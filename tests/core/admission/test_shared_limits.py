"""Rate limits shared through Redis, and what the app does when that Redis dies."""

from __future__ import annotations

from typing import Any

from core.host.server import RunningServer
from tests.support.admission import SlowRoutes
from tests.support.identities import citizen
from tests.support.petitions import petition_url
from tests.support.raw_http import connect, request
from tests.support.services import REDIS_URL


async def _limited(client) -> list[int]:
    return [(await client.get("/test/limited", headers=citizen(5))).status for _ in range(4)]


async def test_two_app_instances_share_one_budget_through_redis(make_client, redis_server) -> None:
    settings = {
        "admission": {"enabled": True},
        "redis": {"url": f"redis://127.0.0.1:{redis_server.port}/0", "key_prefix": "t1:"},
    }
    first = await make_client(extra_plugins=(SlowRoutes(),), **settings)
    second = await make_client(extra_plugins=(SlowRoutes(),), **settings)
    statuses = [
        (await client.get("/test/limited", headers=citizen(5))).status
        for client in (first, second, first, second)
    ]
    assert statuses == [200, 200, 200, 429]


async def test_when_redis_dies_limits_fall_back_to_local_and_the_failure_is_counted(
    make_client, redis_server
) -> None:
    client = await make_client(
        extra_plugins=(SlowRoutes(),),
        admission={"enabled": True},
        redis={"url": f"redis://127.0.0.1:{redis_server.port}/0", "key_prefix": "t2:"},
    )
    assert (await client.get("/readyz")).status == 200
    await redis_server.kill()
    # Fail open by default: the local limiter answers with the same budget.
    assert await _limited(client) == [200, 200, 200, 429]
    # Degraded, not down: the instance still serves (tests/core/http/test_operations.py).
    assert (await client.get("/readyz")).status == 200
    metrics = await (await client.get("/metrics")).text()
    errors = next(
        line
        for line in metrics.splitlines()
        if line.startswith("qatysu_ratelimit_backend_errors_total ")
    )
    assert float(errors.split()[1]) >= 1.0


async def test_failing_closed_refuses_while_redis_is_down(make_client, redis_server) -> None:
    client = await make_client(
        extra_plugins=(SlowRoutes(),),
        admission={"enabled": True, "ratelimit_fail_open": False},
        redis={"url": f"redis://127.0.0.1:{redis_server.port}/0", "key_prefix": "t3:"},
    )
    await redis_server.kill()
    assert await _limited(client) == [429, 429, 429, 429]


# -- the fast lane spends the same shared budget, through leases ----------------------------

# No token comes back while a test runs; a lease is a tenth of the burst.
HOT_READ = {"public-read": {"rate": 0.01, "burst": 40}}
BURST, LEASE = 40, 4


def shared_by(redis_url: str, key_prefix: str, **admission: Any) -> dict[str, Any]:
    """Settings sections for an instance sharing ``redis_url`` under ``key_prefix``, with the
    access log on: its lines say which answers the lane gave (``lane_log``)."""
    return {
        "admission": {"rate_overrides": HOT_READ, **admission},
        "redis": {"url": redis_url, "key_prefix": key_prefix},
        "server": {"access_log": True},
    }


async def burst(
    servers: list[RunningServer],
    target: str,
    rounds: int,
    request_ids: list[list[str]] | None = None,
) -> list[int]:
    """``rounds`` reads on each server in turn, each on its keep-alive connection; the request
    id of each answer from ``servers[i]`` goes to ``request_ids[i]`` when given."""
    connections = [await connect(server) for server in servers]
    try:
        statuses = []
        for _ in range(rounds):
            for index, connection in enumerate(connections):
                [(status, headers, _)] = await connection.exchange(request("GET", target))
                statuses.append(status)
                if request_ids is not None:
                    request_ids[index].append(headers["X-Request-Id"])
        return statuses
    finally:
        for connection in connections:
            connection.close()


async def test_two_instances_give_one_client_one_hot_read_budget_lane_included(
    serve, petition_on, key_prefix, lane_log
) -> None:
    first = await serve(**shared_by(REDIS_URL, key_prefix))
    # The same SQLite file: the same petitions.
    second = await serve(**shared_by(REDIS_URL, key_prefix))
    target = petition_url(await petition_on(first))
    request_ids: list[list[str]] = [[], []]
    statuses = await burst([first, second], target, rounds=BURST, request_ids=request_ids)
    allowed = statuses.count(200)
    assert set(statuses) == {200, 429}
    # One budget: what the shared bucket gives, give or take a lease per instance (held when
    # the burst began, or held unspent when it ended).
    assert BURST - 2 * LEASE <= allowed <= BURST + 2 * LEASE
    assert lane_log.answered(request_ids[0]) > 0
    assert lane_log.answered(request_ids[1]) > 0


async def test_with_redis_down_the_lane_falls_back_to_the_local_budget(
    serve, petition_on, redis_server, lane_log
) -> None:
    server = await serve(**shared_by(f"redis://127.0.0.1:{redis_server.port}/0", "down:"))
    target = petition_url(await petition_on(server))
    await burst([server], target, rounds=2)
    await redis_server.kill()
    served = lane_log.count
    statuses = await burst([server], target, rounds=BURST + 2 * LEASE)
    # Fail open: the local bucket's whole budget, plus what the lease held when Redis died.
    assert BURST <= statuses.count(200) <= BURST + LEASE
    assert statuses[-1] == 429
    assert lane_log.count > served


async def test_with_redis_down_and_failing_closed_the_lane_answers_no_limited_read(
    serve, petition_on, redis_server, lane_log
) -> None:
    redis_url = f"redis://127.0.0.1:{redis_server.port}/0"
    server = await serve(**shared_by(redis_url, "closed:", ratelimit_fail_open=False))
    target = petition_url(await petition_on(server))
    await burst([server], target, rounds=LEASE)
    await redis_server.kill()
    served = lane_log.count
    statuses = await burst([server], target, rounds=2 * LEASE)
    # Only the tokens already taken from the shared bucket are spent, then every read is
    # refused by the ordinary path.
    held = statuses.count(200)
    assert held <= LEASE - 1
    assert statuses == [200] * held + [429] * (2 * LEASE - held)
    assert lane_log.count == served + held
