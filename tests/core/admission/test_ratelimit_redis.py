from __future__ import annotations

import asyncio
import hashlib
import math
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from core.admission.gcra import LocalRateLimiter, RateDecision
from core.admission.ratelimit_redis import GCRA_SCRIPT, FallbackRateLimiter, RedisRateLimiter
from core.plugin_host.priority import RatePolicy

if TYPE_CHECKING:
    from tests.support.admission import FakeClock, RedisServerProcess

# No token comes back while a test runs.
SLOW = RatePolicy(name="slow", rate=0.001, burst=3)


# -- RedisRateLimiter against the shared server ---------------------------------------------


@pytest.mark.redis
@pytest.mark.asyncio
async def test_script_is_reloaded_after_script_flush(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, key_prefix=key_prefix)
    sha = hashlib.sha1(GCRA_SCRIPT.encode(), usedforsecurity=False).hexdigest()
    first = await limiter.check("citizen", SLOW)
    await redis_client.script_flush()
    assert await redis_client.script_exists(sha) == [False]
    second = await limiter.check("citizen", SLOW)
    assert (first.allowed, first.remaining) == (True, 2)
    assert (second.allowed, second.remaining) == (True, 1)
    assert await redis_client.script_exists(sha) == [True]


@pytest.mark.redis
@pytest.mark.asyncio
async def test_bucket_key_is_prefixed_and_expires_when_the_bucket_is_full(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, key_prefix=key_prefix)
    decision = await limiter.check("citizen", SLOW)
    key = limiter.redis_key("citizen", SLOW)
    ttl_ms = await redis_client.pttl(key)
    assert key == f"{key_prefix}slow:citizen"
    assert 0 < ttl_ms <= math.ceil(decision.reset_after * 1000)


@pytest.mark.redis
@pytest.mark.asyncio
async def test_denied_check_writes_nothing(redis_client: redis.Redis, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, key_prefix=key_prefix)
    decision = await limiter.check("citizen", SLOW, cost=SLOW.burst + 1)
    assert decision.allowed is False
    assert await redis_client.exists(limiter.redis_key("citizen", SLOW)) == 0


@pytest.mark.asyncio
async def test_cost_below_one_is_rejected_before_calling_redis() -> None:
    client = redis.Redis(host="127.0.0.1", port=1)  # never contacted
    limiter = RedisRateLimiter(client, key_prefix="unused:")
    with pytest.raises(ValueError, match="cost"):
        await limiter.check("citizen", SLOW, cost=0)
    await client.aclose()


# -- FallbackRateLimiter with a scripted primary --------------------------------------------


class ScriptedPrimary:
    """A primary that fails with ``error`` (or hangs) while told to, else allows everything."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.hang = False
        self.calls = 0

    async def check(self, key: str, policy: RatePolicy, cost: int = 1) -> RateDecision:
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.error is not None:
            raise self.error
        return RateDecision(
            allowed=True, limit=policy.burst, remaining=99, reset_after=1.0, retry_after=0.0
        )


def make_fallback(
    primary: ScriptedPrimary, clock: FakeClock, errors: list[str], *, fail_open: bool = True
) -> FallbackRateLimiter:
    return FallbackRateLimiter(
        primary=primary,
        fallback=LocalRateLimiter(clock=clock),
        on_backend_error=lambda: errors.append("error"),
        fail_open=fail_open,
        retry_interval=1.0,
        timeout=0.01,
        clock=clock,
    )


@pytest.mark.asyncio
async def test_healthy_primary_answers_and_reports_nothing(clock: FakeClock) -> None:
    primary, errors = ScriptedPrimary(), []
    limiter = make_fallback(primary, clock, errors)
    decision = await limiter.check("citizen", SLOW)
    assert decision.remaining == 99
    assert errors == []


@pytest.mark.parametrize(
    "error",
    [RedisConnectionError("gone"), RedisError("broken"), ConnectionRefusedError(), OSError()],
    ids=["redis-connection", "redis-other", "refused", "os-error"],
)
@pytest.mark.asyncio
async def test_backend_failure_is_reported_and_answered_locally(
    clock: FakeClock, error: BaseException
) -> None:
    primary, errors = ScriptedPrimary(), []
    primary.error = error
    limiter = make_fallback(primary, clock, errors)
    decision = await limiter.check("citizen", SLOW)
    assert (decision.allowed, decision.remaining) == (True, 2)
    assert errors == ["error"]


@pytest.mark.asyncio
async def test_backend_that_hangs_past_the_timeout_is_a_failure(clock: FakeClock) -> None:
    primary, errors = ScriptedPrimary(), []
    primary.hang = True
    limiter = make_fallback(primary, clock, errors)
    decision = await limiter.check("citizen", SLOW)
    assert (decision.allowed, decision.remaining) == (True, 2)
    assert errors == ["error"]


@pytest.mark.asyncio
async def test_failed_backend_is_left_alone_for_the_retry_interval(clock: FakeClock) -> None:
    primary, errors = ScriptedPrimary(), []
    primary.error = RedisConnectionError("gone")
    limiter = make_fallback(primary, clock, errors)
    await limiter.check("citizen", SLOW)
    clock.advance(0.999)
    await limiter.check("citizen", SLOW)
    assert (primary.calls, errors) == (1, ["error"])
    primary.error = None
    clock.advance(0.001)
    decision = await limiter.check("citizen", SLOW)
    assert (primary.calls, decision.remaining) == (2, 99)


@pytest.mark.asyncio
async def test_fail_closed_denies_while_the_backend_fails(clock: FakeClock) -> None:
    primary, errors = ScriptedPrimary(), []
    primary.error = RedisConnectionError("gone")
    limiter = make_fallback(primary, clock, errors, fail_open=False)
    decision = await limiter.check("citizen", SLOW)
    assert decision == RateDecision(
        allowed=False, limit=3, remaining=0, reset_after=SLOW.window_seconds, retry_after=1.0
    )
    assert errors == ["error"]


@pytest.mark.asyncio
async def test_programming_errors_are_not_taken_for_backend_failures(clock: FakeClock) -> None:
    primary, errors = ScriptedPrimary(), []
    primary.error = ValueError("bad cost")
    limiter = make_fallback(primary, clock, errors)
    with pytest.raises(ValueError, match="bad cost"):
        await limiter.check("citizen", SLOW)
    assert errors == []


# -- FallbackRateLimiter with a real Redis that dies and comes back --------------------------


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
@pytest.mark.asyncio
async def test_killed_redis_falls_back_then_is_used_again_after_restart(
    redis_server: RedisServerProcess, clock: FakeClock, fail_open: bool
) -> None:
    client = redis.Redis(
        host="127.0.0.1",
        port=redis_server.port,
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    errors: list[str] = []
    primary = RedisRateLimiter(client, key_prefix="qatysu-test:")
    limiter = FallbackRateLimiter(
        primary=primary,
        fallback=LocalRateLimiter(clock=clock),
        on_backend_error=lambda: errors.append("error"),
        fail_open=fail_open,
        retry_interval=1.0,
        timeout=5.0,
        clock=clock,
    )
    bucket = primary.redis_key("citizen", SLOW)
    try:
        through_redis = [await limiter.check("citizen", SLOW) for _ in range(4)]
        assert [d.allowed for d in through_redis] == [True, True, True, False]
        assert await client.exists(bucket) == 1
        assert errors == []

        await redis_server.kill()
        while_down = [await limiter.check("citizen", SLOW) for _ in range(2)]
        if fail_open:  # a fresh local bucket, though Redis's was spent
            assert [(d.allowed, d.remaining) for d in while_down] == [(True, 2), (True, 1)]
        else:
            assert [d.allowed for d in while_down] == [False, False]
        assert errors == ["error"]  # the second check did not try Redis

        await redis_server.start()  # same port, empty: persistence is off
        assert await client.exists(bucket) == 0
        clock.advance(1.0)
        after_restart = await limiter.check("citizen", SLOW)
        assert (after_restart.allowed, after_restart.remaining) == (True, 2)
        assert await client.exists(bucket) == 1
        assert errors == ["error"]
    finally:
        await client.aclose()
