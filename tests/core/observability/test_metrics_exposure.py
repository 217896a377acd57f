"""Where ``/metrics`` answers: the API port, a port of its own, or behind a bearer token."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from core.observability import keys as observability_keys
from core.settings import SettingsError, build_settings
from tests.support.identities import auth
from tests.support.services import free_port

METRICS_TOKEN = "metrics-scrape-token-0123456789abcdef"


async def test_by_default_metrics_answer_on_the_api_port(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/metrics")
    assert response.status == 200
    assert "qatysu_http_requests_total" in await response.text()


async def test_with_a_bearer_token_metrics_need_it(make_client: Any) -> None:
    client = await make_client(metrics={"exposure": "bearer_token", "bearer_token": METRICS_TOKEN})
    refused = await client.get("/metrics")
    wrong = await client.get("/metrics", headers=auth("x" * 40))
    allowed = await client.get("/metrics", headers=auth(METRICS_TOKEN))
    assert (refused.status, wrong.status, allowed.status) == (401, 401, 200)
    assert refused.content_type == "application/problem+json"
    assert "qatysu_http_requests_total" in await allowed.text()


async def test_on_a_separate_port_metrics_leave_the_api_port(make_client: Any) -> None:
    port = free_port()
    client = await make_client(
        metrics={"exposure": "separate_port", "host": "127.0.0.1", "port": port}
    )
    assert (await client.get("/metrics")).status == 404
    assert client.app[observability_keys.METRICS_PORT] == port
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        assert "qatysu_http_requests_total" in await response.text()


async def test_the_openapi_document_lists_metrics_only_where_they_answer(make_client: Any) -> None:
    client = await make_client(metrics={"exposure": "separate_port", "port": free_port()})
    paths = (await (await client.get("/openapi.json")).json())["paths"]
    assert "/metrics" not in paths


@pytest.mark.parametrize("token", ["", "short"])
def test_bearer_token_exposure_needs_a_token_of_32_bytes(token: str) -> None:
    with pytest.raises(SettingsError, match=r"metrics\.bearer_token"):
        build_settings({"metrics": {"exposure": "bearer_token", "bearer_token": token}})
