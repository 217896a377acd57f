"""Fixtures for the admission tests: a fake clock and the shared Redis (the private
redis-server to kill, ``redis_server``, is in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
import redis.asyncio as redis

from core.admission.gcra import LocalRateLimiter
from core.admission.ratelimit_redis import RedisRateLimiter
from tests.support.admission import Backend, FakeClock
from tests.support.services import REDIS_URL, service_unavailable


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
