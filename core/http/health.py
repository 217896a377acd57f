"""What readiness asks of the dependencies: the database, its schema, and Redis.

Readiness answers one question for the load balancer: can this instance serve? So a dependency
whose users carry on without it is *degraded*, not a reason to leave the pool. Redis is such a
dependency while its users fail open: rate limits fall back to this process's own, and
idempotency keys are kept in the process. Taking every instance out of the pool for a Redis
outage would turn a lost convenience into a total outage. The exception is a rate limiter that
fails closed (``admission.ratelimit_fail_open = false``): it refuses every limited request while
Redis is down, and the instance is not ready.

The answers are kept for ``server.readiness_cache_seconds`` and asked for once however many
probes arrive together, so a flood of ``/readyz`` costs one round of pings per interval.
``qatysu_dependency_up`` shows each dependency's last answer (1 up, 0 down).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from prometheus_client import Gauge

from core import keys
from core.observability import keys as observability_keys
from core.settings import Settings
from core.storage import keys as storage_keys
from core.storage.migrations import MigrationSet, pending_migrations

if TYPE_CHECKING:
    from aiohttp import web

# Each dependency's answer is awaited at most this long; a slower one counts as down.
CHECK_TIMEOUT = 1.0

State = Literal["ok", "degraded", "failing"]


@dataclass(frozen=True, slots=True)
class Check:
    """One check's outcome: ``detail`` is what ``/readyz`` shows for it."""

    state: State
    detail: str = "ok"


OK = Check("ok")


def redis_fails_closed(settings: Settings) -> bool:
    """Whether a Redis outage refuses requests: the shared rate limiter, failing closed."""
    admission = settings.admission
    return admission.enabled and admission.ratelimit_enabled and not admission.ratelimit_fail_open


class DependencyChecks:
    """The dependencies' answers, asked for at most once per ``ttl`` seconds (single flight)."""

    def __init__(
        self,
        app: web.Application,
        *,
        migration_sets: list[MigrationSet],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._migration_sets = migration_sets
        self._ttl = ttl
        self._clock = clock
        self._latest: dict[str, Check] | None = None
        self._expires = float("-inf")
        self._asking: asyncio.Task[dict[str, Check]] | None = None
        self._up = Gauge(
            "qatysu_dependency_up",
            "Whether a dependency answered readiness's last check (1) or not (0).",
            ["dependency"],
            registry=app[observability_keys.METRICS].registry,
            multiprocess_mode="livemin",
        )

    async def results(self) -> dict[str, Check]:
        if self._latest is not None and self._clock() < self._expires:
            return self._latest
        if self._asking is None:
            self._asking = asyncio.create_task(self._ask(), name="qatysu-readiness-checks")
        # Shielded: a probe that hangs up does not cancel the answer the others wait for.
        return await asyncio.shield(self._asking)

    async def _ask(self) -> dict[str, Check]:
        try:
            database = await self._database()
            results = {"database": database, "schema": await self._schema(database)}
            redis = await self._redis()
            if redis is not None:
                results["redis"] = redis
            self._latest = results
            self._expires = self._clock() + self._ttl
            return results
        finally:
            self._asking = None

    async def _database(self) -> Check:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await self._app[storage_keys.DATABASE].ping()
        except Exception as exc:
            self._up.labels("database").set(0)
            return Check("failing", f"unreachable: {type(exc).__name__}")
        self._up.labels("database").set(1)
        return OK

    async def _schema(self, database: Check) -> Check:
        if database.state != "ok":
            return Check("failing", "unknown: the database is unreachable")
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                pending = await pending_migrations(
                    self._app[storage_keys.DATABASE], self._migration_sets
                )
        except Exception as exc:
            return Check("failing", f"unknown: {type(exc).__name__}")
        if pending:
            return Check(
                "failing",
                f"behind the code by {len(pending)} migration(s) ({', '.join(pending)}): "
                "run `qatysu migrate`",
            )
        return OK

    async def _redis(self) -> Check | None:
        redis = self._app[keys.REDIS]
        if redis is None:
            return None
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await redis.ping()
        except Exception as exc:
            self._up.labels("redis").set(0)
            if redis_fails_closed(self._app[keys.SETTINGS]):
                return Check(
                    "failing",
                    f"unreachable: {type(exc).__name__}; rate limits fail closed "
                    "(admission.ratelimit_fail_open = false)",
                )
            return Check(
                "degraded",
                f"degraded: unreachable ({type(exc).__name__}); rate limits are this "
                "instance's own and idempotency keys are kept in this process",
            )
        self._up.labels("redis").set(1)
        return OK
