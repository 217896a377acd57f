"""GCRA rate limiting: the pure algorithm, an in-process limiter and the IETF headers.

GCRA (the generic cell rate algorithm) keeps one number per key, the theoretical arrival
time (TAT): the instant at which the bucket would be full again. With emission interval
``T = 1/rate`` a request of cost ``c`` is allowed when ``max(TAT, now) + c*T - burst*T <= now``,
so a full bucket admits exactly ``burst`` requests at once and then one every ``T``.
``gcra.lua`` is the same algorithm for Redis; keep the two in step.

A *lease* (``gcra_grant``, the script's partial mode) takes up to ``wanted`` tokens at once and
settles for as many whole tokens as the bucket holds: the fast lane's local budgets are filled
this way from the shared bucket (``core.admission.leases``).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.plugin_host.priority import RatePolicy

# Redis timestamps (~1.7e9 s) carry ~2e-7 s of float rounding; a microsecond of slack keeps a
# bucket from refusing its last token because 5 * 0.05 came out as 0.25000000000000006.
EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer for one request; times are in seconds from the decision."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float


@dataclass(frozen=True, slots=True)
class Want:
    """Tokens asked of one shared bucket for a lease."""

    key: str
    policy: RatePolicy
    tokens: int


@dataclass(frozen=True, slots=True)
class Grant:
    """Tokens taken from one shared bucket (0 when it had none), and its state after."""

    tokens: int
    decision: RateDecision


def gcra_step(
    tat: float | None, now: float, policy: RatePolicy, cost: int = 1
) -> tuple[float | None, RateDecision]:
    """Decide one request; return the TAT to store (the given one when denied) and the decision.

    ``retry_after`` of a denial is the wait until a request of this ``cost`` fits; a cost above
    ``burst`` never fits.
    """
    if cost < 1:
        raise ValueError(f"cost must be >= 1, got {cost}")
    interval = policy.emission_interval
    capacity = policy.burst * interval
    backlog_end = now if tat is None or tat < now else tat
    new_tat = backlog_end + cost * interval
    allow_at = new_tat - capacity
    if allow_at <= now + EPSILON:
        return new_tat, RateDecision(
            allowed=True,
            limit=policy.burst,
            remaining=whole_tokens(capacity, new_tat - now, interval),
            reset_after=new_tat - now,
            retry_after=0.0,
        )
    return tat, RateDecision(
        allowed=False,
        limit=policy.burst,
        remaining=whole_tokens(capacity, backlog_end - now, interval),
        reset_after=backlog_end - now,
        retry_after=allow_at - now,
    )


def gcra_grant(
    tat: float | None, now: float, policy: RatePolicy, wanted: int
) -> tuple[float | None, int, RateDecision]:
    """Take up to ``wanted`` tokens, as many whole ones as the bucket holds; return the TAT to
    store, the tokens granted (0 when none fits) and the decision for the tokens granted."""
    if wanted < 1:
        raise ValueError(f"wanted must be >= 1, got {wanted}")
    interval = policy.emission_interval
    backlog_end = now if tat is None or tat < now else tat
    available = whole_tokens(policy.burst * interval, backlog_end - now, interval)
    granted = min(wanted, available)
    new_tat, decision = gcra_step(tat, now, policy, max(1, granted))
    return new_tat, (granted if decision.allowed else 0), decision


def whole_tokens(capacity: float, backlog: float, interval: float) -> int:
    return max(0, math.floor((capacity - backlog + EPSILON) / interval))


class RateLimiter(Protocol):
    """Where GCRA state lives: in this process or shared through Redis."""

    async def check(self, key: str, policy: RatePolicy, cost: int = 1) -> RateDecision: ...


class SyncRateLimiter(Protocol):
    """A budget answered without waiting, for the connection layer's fast lane; a denial there
    means: let the ordinary path decide."""

    def check_now(self, key: str, policy: RatePolicy, cost: int = 1) -> RateDecision: ...


class LocalRateLimiter:
    """GCRA with the TATs in a dict; right for one process, and the fallback when Redis fails.

    Memory is bounded by ``max_keys``. When a new key finds the table full, keys whose bucket is
    already full again are dropped first (forgetting them changes no answer); if that frees
    less than a tenth of the table, the least recently admitted keys go too, down to 90% full,
    so the O(n) sweep runs at most once per ``max_keys/10`` new keys.
    """

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._max_keys = max_keys
        self._low_water = max_keys - max(1, max_keys // 10)
        self._clock = clock
        # Insertion order is recency order: every admission re-inserts its key at the end.
        self._tats: dict[tuple[str, str], float] = {}

    @property
    def tracked_keys(self) -> int:
        return len(self._tats)

    async def check(self, key: str, policy: RatePolicy, cost: int = 1) -> RateDecision:
        return self.check_now(key, policy, cost)

    def check_now(self, key: str, policy: RatePolicy, cost: int = 1) -> RateDecision:
        """``check`` without a coroutine, for the connection layer's fast lane."""
        bucket = (policy.name, key)
        now = self._clock()
        old_tat = self._tats.get(bucket)
        new_tat, decision = gcra_step(old_tat, now, policy, cost)
        if decision.allowed and new_tat is not None:
            if old_tat is None:
                if len(self._tats) >= self._max_keys:
                    self._make_room(now)
            else:
                del self._tats[bucket]
            self._tats[bucket] = new_tat
        return decision

    def _make_room(self, now: float) -> None:
        refilled = [bucket for bucket, tat in self._tats.items() if tat <= now]
        for bucket in refilled:
            del self._tats[bucket]
        excess = len(self._tats) - self._low_water
        if excess > 0:
            for bucket in list(itertools.islice(self._tats, excess)):
                del self._tats[bucket]


def ratelimit_headers(policy: RatePolicy, decision: RateDecision) -> dict[str, str]:
    """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers), and
    ``Retry-After`` on a denial.

    On a denial ``t`` is the Retry-After value, as the draft asks both to name the same instant;
    otherwise it is the time until the bucket is full again.
    """
    name = _structured_string(policy.name)
    window = max(1, ceil_seconds(policy.window_seconds))
    headers = {"RateLimit-Policy": f"{name};q={policy.burst};w={window}"}
    if decision.allowed:
        reset = ceil_seconds(decision.reset_after)
    else:
        reset = max(1, ceil_seconds(decision.retry_after))
        headers["Retry-After"] = str(reset)
    headers["RateLimit"] = f"{name};r={decision.remaining};t={reset}"
    return headers


def ceil_seconds(seconds: float) -> int:
    """Whole seconds, rounding up, as the headers state them."""
    return max(0, math.ceil(seconds - EPSILON))


def _structured_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
