"""Operations routes: liveness, readiness (with draining), and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core import keys
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
        "checks": {"server": "ok", "writer": "ok", "database": "ok"},
    }


async def test_readyz_is_503_with_retry_after_while_draining(client: Any) -> None:
    client.app[keys.READINESS].draining = True
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert await response.json() == {
        "status": "not ready",
        "checks": {"server": "draining", "writer": "ok", "database": "ok"},
    }


async def test_healthz_stays_200_while_draining(client: Any) -> None:
    client.app[keys.READINESS].draining = True
    assert (await client.get("/healthz")).status == 200


async def test_readyz_is_503_when_the_database_does_not_answer(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client()

    async def unreachable() -> None:
        raise ConnectionRefusedError("no database")

    monkeypatch.setattr(client.app[keys.DATABASE], "ping", unreachable)
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert await response.json() == {
        "status": "not ready",
        "checks": {
            "server": "ok",
            "writer": "ok",
            "database": "unreachable: ConnectionRefusedError",
        },
    }


async def test_a_stopped_writer_fails_readiness_and_writes_get_503_until_it_restarts(
    make_client: Any,
) -> None:
    client = await make_client()
    writer = client.app[keys.WRITER]
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
    from core.iin import synthetic_iin

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
