"""GCRA shared through Redis, and a wrapper that falls back to local limits when Redis fails."""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from core.admission.gcra import Grant, RateDecision

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from redis.asyncio import Redis

    from core.admission.gcra import RateLimiter, Want
    from core.plugin_host.priority import RatePolicy

# OSError covers TimeoutError and refused connections.
BACKEND_ERRORS = (RedisError, OSError)

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
        self._client = client
        self._script = client.register_script(GCRA_SCRIPT)
        self._key_prefix = key_prefix

    def redis_key(self, key: str, policy: RatePolicy) -> str:
        return f"{self._key_prefix}{policy.name}:{key}"

    async def check(self, key: str, policy: RatePolicy, cost: int = 1) -> RateDecision:
        if cost < 1:
            raise ValueError(f"cost must be >= 1, got {cost}")
        reply = await self._script(
            keys=[self.redis_key(key, policy)],
            args=[repr(policy.emission_interval), policy.burst, cost, 0],
        )
        return _decision(reply, policy)

    async def lease_many(self, wants: Sequence[Want]) -> list[Grant]:
        """Lease tokens for many buckets in one script call: each takes as many whole tokens
        as its bucket holds, up to what was wanted.

        One call for the batch costs a fraction of a pipelined call per bucket in redis-py.
        It touches many keys, so on Redis Cluster (which the app's single-node client does not
        speak) it would have to be split by hash slot.
        """
        keys: list[str] = []
        args: list[str | int] = []
        for want in wants:
            if want.tokens < 1:
                raise ValueError(f"a lease needs >= 1 token, got {want.tokens}")
            policy = want.policy
            keys.append(self.redis_key(want.key, policy))
            args += (repr(policy.emission_interval), policy.burst, want.tokens, 1)
        reply = await self._script(keys=keys, args=args)
        return [
            Grant(tokens=int(reply[i + 4]), decision=_decision(reply[i : i + 4], want.policy))
            for want, i in zip(wants, range(0, len(reply), 5), strict=True)
        ]


def _decision(reply: Sequence[Any], policy: RatePolicy) -> RateDecision:
    allowed, remaining, reset_after, retry_after = reply[:4]
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

    @property
    def fail_open(self) -> bool:
        return self._fail_open

    @property
    def timeout(self) -> float:
        return self._timeout

    def primary_available(self) -> bool:
        """Whether Redis is in the path (it is not for ``retry_interval`` after a failure)."""
        return self._clock() >= self._primary_retry_at

    def primary_failed(self) -> None:
        """Take Redis out of the path for ``retry_interval``; also for the fast lane's leases."""
        self._primary_retry_at = self._clock() + self._retry_interval
        self._on_backend_error()

    async def check(self, key: str, policy: RatePolicy, cost: int = 1) -> RateDecision:
        if self.primary_available():
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._primary.check(key, policy, cost)
            except BACKEND_ERRORS:
                self.primary_failed()
        if self._fail_open:
            return await self._fallback.check(key, policy, cost)
        return RateDecision(
            allowed=False,
            limit=policy.burst,
            remaining=0,
            reset_after=policy.window_seconds,
            retry_after=self._retry_interval,
        )
