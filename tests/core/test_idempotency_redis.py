"""The idempotency store on a failing Redis: it backs off, as the shared rate limiter does."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from core.idempotency import Answer, LocalAnswers, RedisAnswers


class DeadRedis:
    """A Redis client whose every call fails, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def _fail(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise RedisConnectionError("Connection refused")

    set = get = delete = _fail


async def test_a_dead_redis_is_tried_once_per_interval_not_on_every_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = DeadRedis()
    answers = RedisAnswers(redis, "t:", LocalAnswers())  # type: ignore[arg-type]
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
