"""Fixtures for the admission tests: a fake clock, the shared Redis, and a private redis-server."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
import redis.asyncio as redis

from core.admission.gcra import LocalRateLimiter, RateLimiter
from core.admission.ratelimit_redis import RedisRateLimiter
from tests.support.services import REDIS_URL, free_port, service_unavailable


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- the shared Redis -----------------------------------------------------------------------


async def connect_redis() -> redis.Redis:
    """A client for the shared test Redis, or a skip (a failure when services are required)."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as error:
        await client.aclose()
        service_unavailable(f"Redis not reachable at {urlsplit(REDIS_URL).netloc}: {error}")
    return client


def unique_prefix() -> str:
    return f"qatysu-test:{uuid.uuid4().hex}:"


async def delete_prefixed(client: redis.Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


@pytest_asyncio.fixture
async def redis_client() -> AsyncIterator[redis.Redis]:
    client = await connect_redis()
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def key_prefix(redis_client: redis.Redis) -> AsyncIterator[str]:
    prefix = unique_prefix()
    yield prefix
    await delete_prefixed(redis_client, prefix)


# -- one behavioural suite, two rate limiter backends ---------------------------------------


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


@pytest_asyncio.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Backend]:
    if request.param == "local":

        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        yield Backend(limiter=LocalRateLimiter(clock=clock), wait=advance, slack=0.0)
        return

    async def sleep_with_margin(seconds: float) -> None:
        await asyncio.sleep(seconds * 1.5)

    client = await connect_redis()
    prefix = unique_prefix()
    try:
        limiter = RedisRateLimiter(client, key_prefix=prefix)
        yield Backend(limiter=limiter, wait=sleep_with_margin, slack=1.0)
    finally:
        await delete_prefixed(client, prefix)
        await client.aclose()


# -- a private redis-server to kill ---------------------------------------------------------


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


@pytest_asyncio.fixture
async def redis_server() -> AsyncIterator[RedisServerProcess]:
    executable = shutil.which("redis-server")
    if executable is None:
        service_unavailable("redis-server is not on PATH")
    server = RedisServerProcess(executable)
    try:
        await server.start()
        yield server
    finally:
        await server.kill()
