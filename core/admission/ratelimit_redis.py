"""GCRA shared through Redis, and a wrapper that falls back to local limits when Redis fails."""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from core.admission.gcra import RateDecision

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio import Redis

    from core.admission.gcra import RateLimiter
    from core.admission.priority import RatePolicy

GCRA_SCRIPT = resources.files(__package__).joinpath("gcra.lua").read_text(encoding="utf-8")


class RedisRateLimiter:
    """GCRA with the TATs in Redis, one atomic script call per check.

    The caller owns ``client`` (and closes it); give it short socket timeouts and no retries so
    that a failing Redis is noticed in milliseconds and the fallback can take over.
    Keys are ``<key_prefix><policy name>:<key>`` and expire once their bucket is full again.
    The script is called by its SHA; redis-py loads it again when Redis answers NOSCRIPT (after
    a restart or ``SCRIPT FLUSH``).
    """

    def __init__(self, client: Redis, *, key_prefix: str) -> None:
        self._script = client.register_script(GCRA_SCRIPT)
        self._key_prefix = key_prefix

    def redis_key(self, key: str, policy: RatePolicy) -> str:
        return f"{self._key_prefix}{policy.name}:{key}"

    async def check(self, key: str, policy: RatePolicy, cost: int = 1) -> RateDecision:
        if cost < 1:
            raise ValueError(f"cost must be >= 1, got {cost}")
        reply = await self._script(
            keys=[self.redis_key(key, policy)],
            args=[repr(policy.emission_interval), policy.burst, cost],
        )
        allowed, remaining, reset_after, retry_after = reply
        return RateDecision(
            allowed=allowed == 1,
            limit=policy.burst,
            remaining=int(remaining),
            reset_after=float(reset_after),
            retry_after=float(retry_after),
        )


class FallbackRateLimiter:
    """Asks ``primary`` (Redis) and answers from ``fallback`` (local) while it fails.

    Every failure calls ``on_backend_error`` and keeps Redis out of the path for
    ``retry_interval`` seconds, so a dead Redis costs one failed call per interval rather than
    one per request. With ``fail_open=False`` requests are denied instead of limited locally.
    ``timeout`` bounds each primary call, whatever the client's own socket timeouts are.
    """

    def __init__(
        self,
        *,
        primary: RateLimiter,
        fallback: RateLimiter,
        on_backend_error: Callable[[], None],
        fail_open: bool = True,
        retry_interval: float = 1.0,
        timeout: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._on_backend_error = on_backend_error
        self._fail_open = fail_open
        self._retry_interval = retry_interval
        self._timeout = timeout
        self._clock = clock
        self._primary_retry_at = float("-inf")

    async def check(self, key: str, policy: RatePolicy, cost: int = 1) -> RateDecision:
        if self._clock() >= self._primary_retry_at:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._primary.check(key, policy, cost)
            except (RedisError, OSError):  # OSError covers TimeoutError and refused connections
                self._primary_retry_at = self._clock() + self._retry_interval
                self._on_backend_error()
        if self._fail_open:
            return await self._fallback.check(key, policy, cost)
        return RateDecision(
            allowed=False,
            limit=policy.burst,
            remaining=0,
            reset_after=policy.window_seconds,
            retry_after=self._retry_interval,
        )
