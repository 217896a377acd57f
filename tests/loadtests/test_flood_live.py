"""The flood generator against a tiny in-test server: exact outcome counts, no timing claims.

Give-ups are short and the slow route sleeps well past them, so every count is exact.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from loadtests.flood import (
    Flood,
    FloodConfig,
    FloodResult,
    RequestKind,
    clock,
    parse_mix,
    run_flood,
    wait_for_answers,
)

SLOW_SECONDS = 1.0


def kind(name: str, path: str, weight: float) -> RequestKind:
    return RequestKind(name=name, method="GET", path=path, weight=weight)


@asynccontextmanager
async def tiny_server(seen_tokens: list[str] | None = None) -> AsyncIterator[str]:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def shed(request: web.Request) -> web.Response:
        return web.json_response({"shed": True}, status=503, headers={"Retry-After": "1"})

    async def shed_bare(request: web.Request) -> web.Response:
        return web.json_response({"shed": True}, status=429)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_SECONDS)
        return web.json_response({"late": True})

    async def sign(request: web.Request) -> web.Response:
        if seen_tokens is not None:
            seen_tokens.append(request.headers["Authorization"])
        return web.json_response({"signature_count": 1}, status=201)

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/shed", shed)
    app.router.add_get("/shed-bare", shed_bare)
    app.router.add_get("/slow", slow)
    app.router.add_post("/api/v1/petitions/{id}/signatures", sign)
    # Cancel handlers whose client gave up, so the slow ones do not hold the cleanup.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def config(url: str, *mix: RequestKind, **overrides: object) -> FloodConfig:
    settings: dict[str, object] = {
        "url": url,
        "rate": 160.0,
        "duration": 0.25,
        "mix": mix,
        "give_up": 0.3,
        "arrivals": "uniform",
        "clients": 5,
    }
    settings.update(overrides)
    return FloodConfig(**settings)  # type: ignore[arg-type]


def test_outcomes_are_counted_exactly() -> None:
    async def scenario() -> FloodResult:
        async with tiny_server() as url:
            mix = (kind("ok", "/ok", 2), kind("shed", "/shed", 1), kind("slow", "/slow", 1))
            return await run_flood(config(url, *mix))

    result = asyncio.run(scenario())
    assert result.scheduled == result.sent == 40
    assert result.counts == {"ok": {"2xx": 20}, "shed": {"503": 10}, "slow": {"timeout": 10}}
    assert len(result.latencies["2xx"]) == 20
    assert len(result.latencies["503"]) == 10
    # A timeout is recorded when the give-up fires, never before it.
    assert min(result.latencies["timeout"]) >= 0.3
    assert result.good("ok") == 20
    assert result.goodput == 20 / 0.25
    assert len(result.lags) == 40
    assert result.missing_retry_after == 0
    assert result.unanswered == 10
    assert not result.pool_bound


def test_refused_connections_are_connect_errors() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        result = asyncio.run(run_flood(config(f"http://127.0.0.1:{port}", kind("ok", "/ok", 1))))
    assert result.counts == {"ok": {"connect_error": 40}}


def test_requests_beyond_the_generators_pool_are_not_sent() -> None:
    async def scenario() -> FloodResult:
        async with tiny_server() as url:
            # Four requests 50 ms apart; the first holds the only connection for 0.5 s.
            capped = config(
                url,
                kind("slow", "/slow", 1),
                rate=20.0,
                duration=0.2,
                give_up=0.5,
                clients=1,
                max_connections=1,
            )
            return await run_flood(capped)

    result = asyncio.run(scenario())
    assert result.counts == {"slow": {"timeout": 1, "not_sent": 3}}
    assert (result.scheduled, result.sent, result.not_sent) == (4, 1, 3)
    assert result.pool_bound
    assert result.really_offered_rate == 1 / 0.2


def test_every_signature_carries_a_fresh_citizen_token() -> None:
    seen: list[str] = []

    async def scenario() -> FloodResult:
        async with tiny_server(seen) as url:
            mix = parse_mix("sign=1", "P1")
            return await run_flood(config(url, *mix, jwt_secret="test-secret-" + "x" * 32))

    result = asyncio.run(scenario())
    assert result.counts == {"sign": {"2xx": 40}}
    assert result.citizens_used == 40
    assert len(seen) == 40
    assert len(set(seen)) == 40


def test_signing_without_a_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="jwt_secret"):
        asyncio.run(run_flood(config("http://127.0.0.1:9", *parse_mix("sign=1", "P1"))))


def test_rejections_without_retry_after_are_counted() -> None:
    async def scenario() -> FloodResult:
        async with tiny_server() as url:
            mix = (kind("shed", "/shed", 1), kind("bare", "/shed-bare", 1))
            return await run_flood(config(url, *mix))

    result = asyncio.run(scenario())
    assert result.counts == {"shed": {"503": 20}, "bare": {"429": 20}}
    assert result.missing_retry_after == 20


def test_latency_and_give_up_count_from_the_intended_send_time() -> None:
    late = 0.2

    async def scenario() -> FloodResult:
        async with tiny_server() as url:
            mix = (kind("ok", "/ok", 1), kind("slow", "/slow", 1))
            flood = Flood(config(url, *mix, give_up=0.5), asyncio.get_running_loop(), [])
            # Both were due 0.2 s ago: a generator that sends late must not hide the wait.
            flood.dispatch(0, clock() - late)
            dispatched = clock()
            flood.dispatch(1, clock() - late)
            await wait_for_answers(flood, patience=2.0)
            waited = clock() - dispatched
            flood.close_all()
            assert waited < 0.5  # the give-up fired 0.5 s after the intended time, not after
            return flood.result(scheduled=2, send_window=0.0, start_delay=0.0)

    result = asyncio.run(scenario())
    assert result.counts == {"ok": {"2xx": 1}, "slow": {"timeout": 1}}
    assert min(result.latencies["2xx"]) >= late
    assert min(result.latencies["timeout"]) >= 0.5
    assert min(result.lags) >= late


def test_a_late_2xx_is_not_goodput() -> None:
    async def scenario() -> FloodResult:
        async with tiny_server() as url:
            # The slow route answers after 1 s: a 2xx within the give-up, beyond the SLO.
            mix = (kind("ok", "/ok", 1), kind("slow", "/slow", 1))
            return await run_flood(config(url, *mix, give_up=3.0, slo=0.5))

    result = asyncio.run(scenario())
    assert result.counts == {"ok": {"2xx": 20}, "slow": {"2xx": 20}}
    assert result.within_slo == {"ok": 20}
    assert result.goodput == 20 / 0.25
    assert result.ok_rate == 40 / 0.25
    assert result.good_share() == 0.5


def test_one_request_per_connection_opens_a_connection_for_each() -> None:
    async def scenario() -> FloodResult:
        async with tiny_server() as url:
            return await run_flood(
                config(url, kind("ok", "/ok", 1), clients=1, requests_per_connection=1)
            )

    result = asyncio.run(scenario())
    assert result.counts == {"ok": {"2xx": 40}}
    assert result.connections_opened == result.on_new_connection == 40


def test_a_citizen_keeps_its_connection_for_a_few_requests_only() -> None:
    async def scenario() -> FloodResult:
        async with tiny_server() as url:
            return await run_flood(
                config(url, kind("ok", "/ok", 1), clients=2, requests_per_connection=4)
            )

    result = asyncio.run(scenario())
    assert result.counts == {"ok": {"2xx": 40}}
    # At most four requests per connection: ten connections at least, each counted once.
    assert 10 <= result.connections_opened == result.on_new_connection <= 40
