"""Rate limits shared through Redis, and what the app does when that Redis dies."""

from __future__ import annotations

from tests.support.admission import SlowRoutes
from tests.support.identities import citizen


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
    # Degraded, not down: the instance still serves (tests/core/test_operations.py).
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
