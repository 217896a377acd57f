"""Operations routes: liveness, readiness (with draining), and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from core import keys
from core.http import keys as http_keys
from core.plugin_host import keys as plugin_host_keys
from core.storage import keys as storage_keys
from core.storage.migrations import migrate, migrations_table
from tests.support.identities import citizen


async def test_healthz_answers_ok(client: Any) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {"status": "ok"}


async def test_readyz_is_200_when_started_and_the_database_answers(client: Any) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert "Retry-After" not in response.headers
    assert await response.json() == {
        "status": "ready",
        "checks": {"server": "ok", "writer": "ok", "database": "ok", "schema": "ok"},
    }


async def test_readyz_is_503_with_retry_after_while_draining(client: Any) -> None:
    client.app[http_keys.READINESS].draining = True
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert await response.json() == {
        "status": "not ready",
        "checks": {"server": "draining", "writer": "ok", "database": "ok", "schema": "ok"},
    }


async def test_healthz_stays_200_while_draining(client: Any) -> None:
    client.app[http_keys.READINESS].draining = True
    assert (await client.get("/healthz")).status == 200


async def test_readyz_is_503_when_the_database_does_not_answer(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client()

    async def unreachable() -> None:
        raise ConnectionRefusedError("no database")

    monkeypatch.setattr(client.app[storage_keys.DATABASE], "ping", unreachable)
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert await response.json() == {
        "status": "not ready",
        "checks": {
            "server": "ok",
            "writer": "ok",
            "database": "unreachable: ConnectionRefusedError",
            "schema": "unknown: the database is unreachable",
        },
    }


async def test_a_stopped_writer_fails_readiness_and_writes_get_503_until_it_restarts(
    make_client: Any,
) -> None:
    client = await make_client()
    writer = client.app[storage_keys.WRITER]
    assert writer._task is not None
    writer._task.cancel()
    await asyncio.sleep(0)
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"]["writer"] == "down"
    async with asyncio.timeout(5):
        signed = await client.post("/api/v1/petitions/demo-public/signatures", headers=citizen())
    assert signed.status == 503
    assert (await signed.json())["detail"] == "storage is restarting; try again shortly"
    await asyncio.sleep(1.2)
    assert (await client.get("/readyz")).status == 200
    assert writer.restarts == 1


async def metrics_text(client: Any) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text: str = await response.text()
    return text


async def test_metrics_count_requests_by_route_template_not_raw_path(client: Any) -> None:
    response = await client.get("/api/v1/petitions/no-such-petition-xyz")
    assert response.status == 404
    text = await metrics_text(client)
    assert (
        'qatysu_http_requests_total{method="GET",route="/api/v1/petitions/{id}",status="404"} 1.0'
        in text.splitlines()
    )
    assert "no-such-petition-xyz" not in text


async def test_metrics_label_unknown_paths_as_unmatched(client: Any) -> None:
    await client.get("/scan/wp-admin/secret-probe")
    text = await metrics_text(client)
    assert (
        'qatysu_http_requests_total{method="GET",route="unmatched",status="404"} 1.0'
        in text.splitlines()
    )
    assert "secret-probe" not in text


async def test_metrics_expose_the_latency_histogram_with_a_bucket_at_the_slo(client: Any) -> None:
    await client.get("/healthz")
    text = await metrics_text(client)
    assert (
        'qatysu_http_request_duration_seconds_bucket{le="0.25",method="GET",route="/healthz"} 1.0'
        in text.splitlines()
    )


async def test_metrics_never_contain_an_iin(client: Any, approved_petition, sign) -> None:
    from plugins.kazakhstan.iin import synthetic_iin

    petition = await approved_petition(client)
    assert (await sign(client, petition["id"], 4242)).status == 201
    text = await metrics_text(client)
    assert synthetic_iin(4242) not in text
    assert synthetic_iin(1) not in text  # the petition's author
    assert "qatysu_petition_signatures_total 1.0" in text.splitlines()
    assert citizen(4242)["Authorization"].split()[1] not in text


async def test_metrics_count_a_refusal_under_its_own_status(client: Any) -> None:
    response = await client.post("/api/v1/petitions", json={})
    assert response.status == 401
    text = await metrics_text(client)
    assert (
        'qatysu_http_requests_total{method="POST",route="/api/v1/petitions",status="401"} 1.0'
        in text.splitlines()
    )


# --- readiness on a bad day: Redis lost, a flood of probes, a schema left behind -------------


def redis_settings(redis_server: Any, prefix: str) -> dict[str, Any]:
    return {"url": f"redis://127.0.0.1:{redis_server.port}/0", "key_prefix": prefix}


def gauge(text: str, name: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


async def test_with_redis_lost_and_limits_failing_open_readyz_stays_200_and_says_degraded(
    make_client: Any, redis_server: Any
) -> None:
    client = await make_client(
        admission={"enabled": True},
        redis=redis_settings(redis_server, "ready1:"),
        server={"readiness_cache_seconds": 0},
    )
    assert (await (await client.get("/readyz")).json())["status"] == "ready"
    up = 'qatysu_dependency_up{dependency="redis"}'
    assert gauge(await metrics_text(client), up) == 1.0
    await redis_server.kill()
    response = await client.get("/readyz")
    assert response.status == 200
    assert "Retry-After" not in response.headers
    assert await response.json() == {
        "status": "degraded",
        "checks": {
            "server": "ok",
            "writer": "ok",
            "database": "ok",
            "schema": "ok",
            "redis": "degraded: unreachable (ConnectionError); rate limits are this instance's "
            "own and idempotency keys are kept in this process",
        },
    }
    assert gauge(await metrics_text(client), up) == 0.0
    assert gauge(await metrics_text(client), 'qatysu_dependency_up{dependency="database"}') == 1.0
    await redis_server.start()
    assert (await (await client.get("/readyz")).json())["status"] == "ready"
    assert gauge(await metrics_text(client), up) == 1.0


async def test_with_redis_lost_and_limits_failing_closed_the_instance_is_not_ready(
    make_client: Any, redis_server: Any
) -> None:
    client = await make_client(
        admission={"enabled": True, "ratelimit_fail_open": False},
        redis=redis_settings(redis_server, "ready2:"),
        server={"readiness_cache_seconds": 0},
    )
    assert (await client.get("/readyz")).status == 200
    await redis_server.kill()
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    body = await response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["redis"] == (
        "unreachable: ConnectionError; rate limits fail closed "
        "(admission.ratelimit_fail_open = false)"
    )


class Counted:
    """Counts the calls of an async method it stands in for."""

    def __init__(self, method: Any) -> None:
        self.method = method
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        return await self.method()


async def test_a_flood_of_readyz_asks_the_database_and_redis_once_per_interval(
    make_client: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(
        redis={"url": redis_url, "key_prefix": "ready3:"},
        server={"readiness_cache_seconds": 0.5},
    )
    database_ping = Counted(client.app[storage_keys.DATABASE].ping)
    redis_ping = Counted(client.app[keys.REDIS].ping)
    monkeypatch.setattr(client.app[storage_keys.DATABASE], "ping", database_ping)
    monkeypatch.setattr(client.app[keys.REDIS], "ping", redis_ping)
    flood = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
    assert [response.status for response in flood] == [200] * 50
    assert (database_ping.calls, redis_ping.calls) == (1, 1)
    await asyncio.sleep(0.6)
    assert (await client.get("/readyz")).status == 200
    assert (database_ping.calls, redis_ping.calls) == (2, 2)


async def test_readiness_kept_for_a_moment_still_turns_503_at_once_when_draining(
    make_client: Any,
) -> None:
    client = await make_client(server={"readiness_cache_seconds": 60})
    assert (await client.get("/readyz")).status == 200
    client.app[http_keys.READINESS].draining = True
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["server"] == "draining"


async def test_on_an_unmigrated_database_readyz_is_503_naming_qatysu_migrate_until_migrated(
    make_client: Any, database_url: str
) -> None:
    client = await make_client(
        database_url,
        database={"migrate_on_start": False},
        server={"readiness_cache_seconds": 0},
    )
    sets = client.app[plugin_host_keys.PLUGINS].migrations()
    expected = [f"{s.namespace} {m.version}" for s in sets for m in s.migrations]
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    body = await response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["schema"] == (
        f"behind the code by {len(expected)} migration(s) ({', '.join(expected)}): "
        "run `qatysu migrate`"
    )
    await migrate(client.app[storage_keys.DATABASE], sets)
    assert (await client.get("/readyz")).status == 200


async def test_a_database_one_migration_behind_is_not_ready_naming_that_migration(
    make_client: Any, database_url: str
) -> None:
    first = await make_client(database_url)
    assert (await first.get("/readyz")).status == 200
    await first.app[storage_keys.WRITER].submit(
        lambda conn: conn.execute(
            sa.delete(migrations_table).where(
                migrations_table.c.namespace == "petitions", migrations_table.c.version == 2
            )
        )
    )
    behind = await make_client(
        database_url, database={"migrate_on_start": False}, server={"readiness_cache_seconds": 0}
    )
    response = await behind.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["schema"] == (
        "behind the code by 1 migration(s) (petitions 2): run `qatysu migrate`"
    )
