"""The access log names the client, from the forwarding header only when a trusted proxy sent it."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.host.app import create_app
from core.host.logs import JsonFormatter
from core.host.server import start_server
from core.http.accesslog import AccessLogger
from tests.support.petitions import petition_url
from tests.support.services import SettingsFactory

ACCESS = "qatysu.access"


async def logged_client(
    aiohttp_client: Any, make_settings: SettingsFactory, trusted: list[str]
) -> TestClient[Any, Any]:
    server = TestServer(create_app(make_settings(server={"trusted_proxies": trusted})))
    # The runner's options are start_server's: started here with the server's access logger.
    await server.start_server(access_log=logging.getLogger(ACCESS), access_log_class=AccessLogger)
    client: TestClient[Any, Any] = await aiohttp_client(server)
    return client


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS]


async def test_behind_a_trusted_proxy_the_log_shows_the_forwarded_client(
    aiohttp_client: Any, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await logged_client(aiohttp_client, make_settings, ["127.0.0.1/32"])
    caplog.set_level(logging.INFO, ACCESS)

    await client.get("/healthz", headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.7"})

    [record] = access_lines(caplog)
    assert record.getMessage().startswith('203.0.113.7 "GET /healthz" 200 ')


async def test_from_an_untrusted_peer_the_forwarding_header_is_not_believed(
    aiohttp_client: Any, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await logged_client(aiohttp_client, make_settings, [])
    caplog.set_level(logging.INFO, ACCESS)

    await client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})

    [record] = access_lines(caplog)
    assert record.getMessage().startswith('127.0.0.1 "GET /healthz" 200 ')


async def test_a_json_access_line_carries_the_request_fields(
    aiohttp_client: Any, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await logged_client(aiohttp_client, make_settings, ["127.0.0.1/32"])
    caplog.set_level(logging.INFO, ACCESS)

    response = await client.get(
        "/no-such-route", headers={"X-Forwarded-For": "203.0.113.7", "X-Request-Id": "abc-123"}
    )

    [record] = access_lines(caplog)
    entry = json.loads(JsonFormatter().format(record))
    assert response.status == 404
    assert {k: entry[k] for k in ("client", "method", "path", "status", "request_id")} == {
        "client": "203.0.113.7",
        "method": "GET",
        "path": "/no-such-route",
        "status": 404,
        "request_id": response.headers["X-Request-Id"],
    }
    assert entry["duration_ms"] >= 0


async def test_a_read_the_fast_lane_answers_is_logged_with_the_forwarded_client(
    make_settings: SettingsFactory,
    approved_petition: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        server={"port": 0, "access_log": True, "trusted_proxies": ["127.0.0.1/32"]},
        admission={"enabled": True},
    )
    running = await start_server(settings)
    try:
        base = f"http://127.0.0.1:{running.port}"
        async with aiohttp.ClientSession(base_url=base) as session:
            petition = await approved_petition(session)
            caplog.set_level(logging.INFO, ACCESS)
            for _ in range(2):  # the second read is the lane's
                async with session.get(
                    petition_url(petition["id"]), headers={"X-Forwarded-For": "203.0.113.7"}
                ) as response:
                    assert response.status == 200
    finally:
        await running.drain()

    lines = [r.getMessage() for r in access_lines(caplog)]
    assert [line.endswith(" lane") for line in lines] == [False, True]
    assert all(line.startswith('203.0.113.7 "GET /api/v1/petitions/') for line in lines)
