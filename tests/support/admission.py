"""What the admission tests share beyond fixtures: a fake clock, a rate limiter under test, a
private redis-server, and routes that hold their slots until released."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from core.admission.gcra import RateLimiter
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.priority import Priority, RatePolicy
from core.plugin_host.routing import RoutePolicy
from tests.support.services import free_port


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    """A rate limiter under test, and how time passes for it."""

    limiter: RateLimiter
    wait: Callable[[float], Awaitable[None]]
    # Seconds of real time a test may take between its checks without changing its figures:
    # zero on the fake clock; on Redis's TIME, less than the policies' emission intervals.
    slack: float

    def assert_seconds(self, actual: float, expected: float) -> None:
        """``actual`` is ``expected``, less whatever time passed since the first check."""
        assert expected - self.slack - 1e-6 <= actual <= expected + 1e-6


class RedisServerProcess:
    """A redis-server without persistence that a test may kill and restart on the same port."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.executable,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await self._wait_until_answering()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None

    async def _wait_until_answering(self) -> None:
        for _ in range(500):
            if self.process is None or self.process.returncode is not None:
                break
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.write(b"PING\r\n")
            reply = await reader.readline()
            writer.close()
            await writer.wait_closed()
            if reply == b"+PONG\r\n":
                return
        await self.kill()
        pytest.fail(f"redis-server did not start on port {self.port}")


class SlowRoutes:
    """A plugin whose slow routes hold their admission slots until the test releases them."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self._changed = asyncio.Condition()

    async def until_started(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.started >= count)

    @hookimpl
    def qatysu_add_routes(self, routes: Any, app: web.Application) -> None:
        async def slow(request: web.Request) -> web.Response:
            async with self._changed:
                self.started += 1
                self._changed.notify_all()
            await self.release.wait()
            return web.json_response({"ok": True})

        async def fast(request: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        for name, priority in (("critical", Priority.CRITICAL), ("sheddable", Priority.SHEDDABLE)):
            routes.add(
                "GET",
                f"/test/slow/{name}",
                slow,
                name=f"test.slow.{name}",
                summary="waits",
                policy=RoutePolicy(priority=priority),
            )
        routes.add(
            "GET",
            "/test/limited",
            fast,
            name="test.limited",
            summary="limited",
            policy=RoutePolicy(
                priority=Priority.NORMAL, rate=RatePolicy(name="test-limited", rate=0.01, burst=3)
            ),
        )
