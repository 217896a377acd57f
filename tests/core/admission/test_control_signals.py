"""Client errors never steer the server-wide concurrency limit; the server's own overload does.

On 6a18a39 every 5xx multiplied the adaptive limit by 0.9: ten bodies nested 1,000 levels deep
(a RecursionError, so a 500) took ``qatysu_admission_limit`` from 128 to 49, and it stayed low.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import aiohttp
from aiohttp import web

from core.admission import keys as admission_keys
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.priority import Priority
from core.plugin_host.routing import RoutePolicy
from tests.support.identities import citizen
from tests.support.petitions import PETITION

ADAPTIVE = {"enabled": True, "ratelimit_enabled": False, "initial_limit": 128, "min_limit": 32}
GAUGE = re.compile(r"^qatysu_admission_limit ([0-9.]+)$", re.MULTILINE)


class FailingRoutes:
    """A route with a bug (500), one whose storage times out (the server's own 503), and one
    that never answers."""

    @hookimpl
    def qatysu_add_routes(self, routes: Any, app: web.Application) -> None:
        async def bug(request: web.Request) -> web.Response:
            raise RuntimeError("a bug that some request's content reaches")

        async def storage_timeout(request: web.Request) -> web.Response:
            raise TimeoutError

        async def hang(request: web.Request) -> web.Response:
            await asyncio.Event().wait()
            raise AssertionError("never answers")

        for name, handler in (("bug", bug), ("storage_timeout", storage_timeout), ("hang", hang)):
            routes.add(
                "GET",
                f"/test/{name.replace('_', '-')}",
                handler,
                name=f"test.{name}",
                summary="fails",
                policy=RoutePolicy(priority=Priority.CRITICAL),
            )


async def gauge(client: Any) -> float:
    """``qatysu_admission_limit`` as ``/metrics`` shows it, once the observer has set it."""
    await asyncio.sleep(0.3)  # the observer sets the gauge about ten times a second
    match = GAUGE.search(await (await client.get("/metrics")).text())
    assert match is not None
    return float(match.group(1))


async def hostile_requests(client: Any) -> list[int]:
    """What one hostile client sends: bad bodies, bad paths, no token, and a route's bug."""
    deep = b'{"text":' * 1000 + b"1" + b"}" * 1000
    statuses = []
    for _ in range(10):
        for response in (
            await client.post(
                "/api/v1/petitions",
                data=deep,
                headers={**citizen(), "Content-Type": "application/json"},
            ),
            await client.post("/api/v1/petitions", json={"title": 7}, headers=citizen()),
            await client.post("/api/v1/petitions", json=PETITION),
            await client.get("/api/v1/petitions/no-such-petition"),
            await client.get("/test/bug"),
        ):
            statuses.append(response.status)
    return statuses


async def test_a_hostile_clients_bad_requests_cannot_move_the_admission_limit(
    make_client: Any,
) -> None:
    client = await make_client(extra_plugins=(FailingRoutes(),), admission=ADAPTIVE)
    assert await gauge(client) == 128.0
    statuses = await hostile_requests(client)
    assert sorted(set(statuses)) == [400, 401, 404, 422, 500]
    assert client.app[admission_keys.ADMISSION].controller.current_limit == 128
    assert await gauge(client) == 128.0


async def test_clients_that_leave_mid_request_cannot_move_the_admission_limit(
    make_client: Any,
) -> None:
    """Their handlers are cancelled; on 6a18a39 each cancellation counted as a drop."""
    client = await make_client(extra_plugins=(FailingRoutes(),), admission=ADAPTIVE)
    controller = client.app[admission_keys.ADMISSION].controller
    for _ in range(10):
        with contextlib.suppress(TimeoutError):
            await client.get("/test/hang", timeout=aiohttp.ClientTimeout(total=0.05))
    for _ in range(200):
        if controller.total_inflight == 0:
            break
        await asyncio.sleep(0.01)
    assert controller.total_inflight == 0
    assert controller.current_limit == 128


async def test_the_servers_own_failures_still_back_the_limit_off(make_client: Any) -> None:
    client = await make_client(extra_plugins=(FailingRoutes(),), admission=ADAPTIVE)
    for _ in range(10):
        assert (await client.get("/test/storage-timeout")).status == 503
    expected = int(128 * 0.9**10)
    assert client.app[admission_keys.ADMISSION].controller.current_limit == expected
    assert await gauge(client) == float(expected)
