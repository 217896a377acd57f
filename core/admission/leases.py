"""The fast lane's share of the shared rate budget: tokens leased in small batches.

The fast lane answers from ``data_received`` and must never wait for Redis, yet with Redis a
client has one budget for all instances (the ordinary path checks the shared GCRA bucket on
every request). So each instance keeps, per client bucket, a small account of tokens taken from
the shared bucket (``gcra.lua``'s lease mode) and spends it locally. A client new to this
instance is answered on one token of credit, since a crowd of readers is mostly readers new to
it, and the credit is repaid by the first top-up. When the account runs down to a quarter of
its target (``lease_size - 1`` tokens), a background task tops it up, the accounts that asked
within 20 ms in one script call. A client with nothing left, and no credit, is
handed to the ordinary path, which asks Redis itself and so answers 200 or the localised 429
from the shared budget; the top-up is asked for at the same time. This is Envoy's
local-plus-global rate limiting, with the local bucket filled from the global one rather than
sized on its own.

**The bound.** An account's balance stays between -1 (the credit) and ``lease_size - 1`` (held
tokens), so it moves by at most ``lease_size`` over any interval. Every token the lane spends
was taken from the shared bucket, or is owed to it. So over any interval the requests admitted
for one client by all instances together are at most what the shared bucket admits in that
interval, plus ``lease_size`` per instance: one lease each. Tokens held but never spent are lost
(the client is under-admitted by them), never given twice. The lease is a tenth of the burst
(at least 1): public reads (burst 100) lease 10 tokens at a time.

**Without Redis.** While Redis is out of the path (``FallbackRateLimiter`` took it out after a
failure, for its retry interval), the lane spends from the local bucket that the ordinary
path's fallback uses too: a lost Redis gives each instance its own budget, as the limiter does
(fail open). Failing closed, the lane hands every limited read to the ordinary path, which
refuses it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import TYPE_CHECKING, Protocol

from core.admission.gcra import Grant, RateDecision, Want, whole_tokens
from core.admission.ratelimit_redis import BACKEND_ERRORS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from core.admission.gcra import LocalRateLimiter
    from core.plugin_host.priority import RatePolicy

# A tenth of the burst: a client's whole budget is over-admitted by at most a tenth per
# instance, and a client reading steadily costs one Redis script per 3/4 of a lease.
LEASE_FRACTION = 10
# Tokens an account may owe: its first read on this instance.
CREDIT = 1
# Top-ups per script call: bounds the call's size, and so Redis's pause, under a crowd.
MAX_BATCH = 256
# Top-ups asked for within this many seconds share a script call: in redis-py a top-up alone
# costs about as much CPU as the reads it serves, in a batch of 20 a fifth of that
# (python -m loadtests.lease_cost; BENCHMARKS.md). A client reading at public-read's
# sustained rate (50/s) spends the last quarter of a 10-token lease in 40 ms, so its top-up
# still arrives in time.
GATHER_SECONDS = 0.02

# The lane's signal to take the ordinary path (which asks the shared bucket itself).
_HAND_OVER = RateDecision(allowed=False, limit=0, remaining=0, reset_after=0.0, retry_after=0.0)


def lease_size(policy: RatePolicy) -> int:
    """How far one instance's account of a bucket of ``policy`` may move: its credit plus the
    tokens it holds at most."""
    return max(1, policy.burst // LEASE_FRACTION)


class LeaseSource(Protocol):
    """Where leased tokens come from: the shared buckets (``RedisRateLimiter``)."""

    async def lease_many(self, wants: Sequence[Want]) -> list[Grant]: ...


class SharedLimiterGate(Protocol):
    """Whether the shared limiter is in the path (``FallbackRateLimiter``)."""

    @property
    def fail_open(self) -> bool: ...

    @property
    def timeout(self) -> float: ...

    def primary_available(self) -> bool: ...

    def primary_failed(self) -> None: ...


class _Lease:
    __slots__ = ("pending", "policy", "retry_at", "shared_tat", "target", "tokens")

    def __init__(self, policy: RatePolicy) -> None:
        self.policy = policy
        # Tokens held after a full top-up; the balance (``tokens``) may fall to -CREDIT.
        self.target = lease_size(policy) - CREDIT
        self.tokens = 0
        self.pending = False
        # Local monotonic times: no top-up is asked for before ``retry_at`` (the shared bucket
        # had no token to give), and the shared bucket is full again at ``shared_tat``.
        self.retry_at = float("-inf")
        self.shared_tat = float("-inf")


class LeasedBudget:
    """The fast lane's rate limiter with Redis: local leases of the shared buckets.

    ``check_now`` never waits; ``run_top_ups`` is the background task that fills the leases.
    Memory is bounded by ``max_keys``: past it, the oldest tenth of the leases is forgotten
    (their held tokens are lost, which under-admits and never over-admits).
    """

    def __init__(
        self,
        *,
        source: LeaseSource,
        gate: SharedLimiterGate,
        fallback: LocalRateLimiter,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._source = source
        self._gate = gate
        self._fallback = fallback
        self._max_keys = max_keys
        self._clock = clock
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._waiting: list[tuple[str, _Lease]] = []
        self._wake = asyncio.Event()

    @property
    def tracked_keys(self) -> int:
        return len(self._leases)

    def held(self, key: str, policy: RatePolicy) -> int:
        """Tokens of ``key``'s bucket held by this instance."""
        lease = self._leases.get((policy.name, key))
        return 0 if lease is None else lease.tokens

    def check_now(self, key: str, policy: RatePolicy, cost: int = 1) -> RateDecision:
        """Spend a held token (or the credit), or deny (take the ordinary path) and ask for a
        top-up."""
        gate = self._gate
        if not gate.primary_available():
            if gate.fail_open:
                return self._fallback.check_now(key, policy, cost)
            return _HAND_OVER
        bucket = (policy.name, key)
        lease = self._leases.get(bucket)
        if lease is None:
            if len(self._leases) >= self._max_keys:
                self._forget_oldest()
            lease = self._leases[bucket] = _Lease(policy)
        now = self._clock()
        if lease.tokens + CREDIT >= cost:
            lease.tokens -= cost
            if lease.tokens * 4 <= lease.target:
                self._ask_top_up(key, lease, now)
            return self._decision(lease, now)
        self._ask_top_up(key, lease, now)
        return _HAND_OVER

    async def run_top_ups(self) -> None:
        """Fill the leases asked for, a batch per round trip, until cancelled."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(GATHER_SECONDS)
            self._wake.clear()
            while self._waiting:
                batch = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
                await self._top_up(batch)

    async def _top_up(self, batch: list[tuple[str, _Lease]]) -> None:
        wants = [Want(key, lease.policy, lease.target - lease.tokens) for key, lease in batch]
        try:
            async with asyncio.timeout(self._gate.timeout):
                grants = await self._source.lease_many(wants)
        except BACKEND_ERRORS:
            self._gate.primary_failed()
            for _, lease in batch:
                lease.pending = False
            return
        now = self._clock()
        for (_, lease), want, grant in zip(batch, wants, grants, strict=True):
            lease.pending = False
            lease.tokens += grant.tokens
            decision = grant.decision
            if grant.tokens:
                lease.shared_tat = now + decision.reset_after
            if grant.tokens < want.tokens:
                # The shared bucket is empty: ask again once it holds a token.
                policy = lease.policy
                interval = policy.emission_interval
                lease.retry_at = now + (
                    max(0.0, decision.reset_after + interval - policy.burst * interval)
                    if grant.tokens
                    else decision.retry_after
                )

    def _ask_top_up(self, key: str, lease: _Lease, now: float) -> None:
        if lease.pending or now < lease.retry_at:
            return
        lease.pending = True
        self._waiting.append((key, lease))
        self._wake.set()

    @staticmethod
    def _decision(lease: _Lease, now: float) -> RateDecision:
        """What the RateLimit headers state: the tokens held here plus those the shared bucket
        held at the last top-up, refilled since (other instances' spending is not seen); before
        the first top-up, what a full bucket holds."""
        policy = lease.policy
        interval = policy.emission_interval
        backlog = max(0.0, lease.shared_tat - now)
        shared = whole_tokens(policy.burst * interval, backlog, interval)
        return RateDecision(
            allowed=True,
            limit=policy.burst,
            remaining=max(0, min(policy.burst, lease.tokens + shared)),
            reset_after=backlog,
            retry_after=0.0,
        )

    def _forget_oldest(self) -> None:
        excess = len(self._leases) - (self._max_keys - max(1, self._max_keys // 10))
        for bucket in list(itertools.islice(self._leases, excess)):
            del self._leases[bucket]
