"""The idempotency store on a failing Redis: it backs off, as the shared rate limiter does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from core.plugin_host.idempotency import Answer, LocalAnswers, RedisAnswers
from tests.support.services import free_port


class CountingRedis(aioredis.Redis):
    """A real client, counting the commands it tries to send."""

    calls = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.calls += 1
        return await super().execute_command(*args, **options)


@pytest.fixture
async def redis() -> AsyncIterator[CountingRedis]:
    """A client of a port nothing listens on, configured as the app configures its own."""
    client = CountingRedis(
        host="127.0.0.1",
        port=free_port(),
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    yield client
    await client.aclose()


async def test_a_dead_redis_is_tried_once_per_interval_not_on_every_call(
    redis: CountingRedis, caplog: pytest.LogCaptureFixture
) -> None:
    answers = RedisAnswers(redis, "t:", LocalAnswers())
    for n in range(20):
        assert await answers.claim(f"key-{n}", Answer("f")) is None
        await answers.keep(f"key-{n}", Answer("f", status=201, body=b"{}"))
    await answers.release("key-0")
    # The twenty creates ran within the one-second retry interval of the first failure.
    assert redis.calls == 1
    assert caplog.text.count("Redis unavailable for idempotency keys") == 1
    # Meanwhile the process kept the answers: a retry is still replayed.
    replay = await answers.claim("key-7", Answer("f"))
    assert replay == Answer("f", status=201, body=b"{}")
