"""The fast lane's leases of the shared rate budget: spent without waiting, topped up behind."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError

from core.admission import leases as leases_module
from core.admission.gcra import Grant, LocalRateLimiter, Want, gcra_grant
from core.admission.leases import LeasedBudget, lease_size
from core.admission.ratelimit_redis import RedisRateLimiter
from core.plugin_host.priority import RatePolicy
from tests.support.admission import FakeClock

# No token comes back while a test runs; a lease is a tenth of the burst.
SLOW = RatePolicy(name="slow", rate=0.001, burst=40)


class SharedBuckets:
    """The shared buckets as ``gcra.lua`` keeps them, in a dict on the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.tats: dict[str, float | None] = {}
        self.calls = 0
        self.failing = False

    async def lease_many(self, wants: Sequence[Want]) -> list[Grant]:
        self.calls += 1
        if self.failing:
            raise RedisConnectionError("Redis is gone")
        grants = []
        for want in wants:
            tat, tokens, decision = gcra_grant(
                self.tats.get(want.key), self.clock(), want.policy, want.tokens
            )
            self.tats[want.key] = tat
            grants.append(Grant(tokens=tokens, decision=decision))
        return grants


class Gate:
    """The shared limiter's health, as ``FallbackRateLimiter`` reports it."""

    def __init__(self, *, fail_open: bool = True) -> None:
        self.fail_open = fail_open
        self.timeout = 1.0
        self.available = True
        self.failures = 0

    def primary_available(self) -> bool:
        return self.available

    def primary_failed(self) -> None:
        self.failures += 1
        self.available = False


def budget(
    shared: SharedBuckets, gate: Gate, clock: FakeClock, **kwargs: int
) -> tuple[LeasedBudget, LocalRateLimiter]:
    local = LocalRateLimiter(clock=clock)
    return LeasedBudget(source=shared, gate=gate, fallback=local, clock=clock, **kwargs), local


async def top_up(leases: LeasedBudget) -> None:
    """Let the background task serve what was asked for so far."""
    task = asyncio.create_task(leases.run_top_ups())
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def allowed(leases: LeasedBudget, key: str, count: int) -> int:
    return sum(leases.check_now(key, SLOW).allowed for _ in range(count))


@pytest.fixture
def shared(clock: FakeClock) -> SharedBuckets:
    return SharedBuckets(clock)


@pytest.fixture(autouse=True)
def top_ups_without_gathering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Top-ups go out at the next turn of the loop, so that ``top_up`` serves them all."""
    monkeypatch.setattr(leases_module, "GATHER_SECONDS", 0)


async def test_a_clients_first_read_is_answered_on_credit_and_a_lease_asked_for(
    shared: SharedBuckets, clock: FakeClock
) -> None:
    leases, _ = budget(shared, Gate(), clock)
    first = leases.check_now("c", SLOW)
    assert (first.allowed, first.remaining) == (True, SLOW.burst - 1)
    assert leases.held("c", SLOW) == -1
    # Owing its credit, the account answers nothing more until the top-up repays it.
    assert leases.check_now("c", SLOW).allowed is False
    await top_up(leases)
    # The shared bucket gave the debt and the lease's target: 4 tokens of its 40.
    assert (shared.calls, leases.held("c", SLOW)) == (1, lease_size(SLOW) - 1) == (1, 3)


async def test_held_tokens_are_spent_locally_and_topped_up_from_a_quarter(
    shared: SharedBuckets, clock: FakeClock
) -> None:
    leases, _ = budget(shared, Gate(), clock)
    leases.check_now("c", SLOW)
    await top_up(leases)
    decisions = [leases.check_now("c", SLOW) for _ in range(2)]
    assert [d.allowed for d in decisions] == [True, True]
    # The shared bucket gave 4 of its 40: 36 remain there, and 2 then 1 are held here.
    assert [d.remaining for d in decisions] == [38, 37]
    await top_up(leases)
    assert shared.calls == 1  # 1 of 3 held is above a quarter: no top-up yet
    assert leases.check_now("c", SLOW).allowed is True
    await top_up(leases)
    assert (shared.calls, leases.held("c", SLOW)) == (2, 3)


async def test_instances_together_admit_at_most_the_budget_plus_a_lease_each(
    shared: SharedBuckets, clock: FakeClock
) -> None:
    instances = [budget(shared, Gate(), clock)[0] for _ in range(3)]
    admitted = 0
    for _ in range(60):
        for leases in instances:
            admitted += allowed(leases, "c", 1)
            await top_up(leases)
    assert SLOW.burst - 3 * lease_size(SLOW) <= admitted <= SLOW.burst + 3 * lease_size(SLOW)
    # Spent to the last token: every lane refuses, and nothing more is asked for.
    calls = shared.calls
    assert sum(allowed(leases, "c", 5) for leases in instances) == 0
    for leases in instances:
        await top_up(leases)
    assert shared.calls == calls


async def test_an_empty_shared_bucket_is_asked_again_only_when_it_holds_a_token(
    shared: SharedBuckets, clock: FakeClock
) -> None:
    policy = RatePolicy(name="tick", rate=1.0, burst=10)  # a lease of 1: the credit alone
    leases, _ = budget(shared, Gate(), clock)
    shared.tats["c"] = clock() + 9.0  # one token left in the shared bucket
    assert leases.check_now("c", policy).allowed is True
    await top_up(leases)
    assert leases.held("c", policy) == 0  # the credit repaid with the last token
    assert leases.check_now("c", policy).allowed is True
    await top_up(leases)
    calls = shared.calls
    assert leases.held("c", policy) == -1  # the shared bucket had nothing to repay it with
    assert leases.check_now("c", policy).allowed is False
    await top_up(leases)
    assert shared.calls == calls  # not asked again before the bucket holds a token
    clock.advance(1.0)
    assert leases.check_now("c", policy).allowed is False
    await top_up(leases)
    assert (shared.calls, leases.held("c", policy)) == (calls + 1, 0)


async def test_a_failing_source_takes_redis_out_and_the_lane_spends_the_local_budget(
    shared: SharedBuckets, clock: FakeClock
) -> None:
    gate = Gate()
    leases, local = budget(shared, gate, clock)
    shared.failing = True
    assert leases.check_now("c", SLOW).allowed is True  # on credit
    await top_up(leases)
    assert gate.failures == 1
    # The local bucket is the one the ordinary path's fallback uses: one budget per instance.
    assert allowed(leases, "c", SLOW.burst + 5) == SLOW.burst
    assert (await local.check("c", SLOW)).allowed is False


async def test_failing_closed_hands_every_read_to_the_ordinary_path(
    shared: SharedBuckets, clock: FakeClock
) -> None:
    gate = Gate(fail_open=False)
    gate.available = False
    leases, _ = budget(shared, gate, clock)
    assert allowed(leases, "c", 5) == 0
    await top_up(leases)
    assert shared.calls == 0


async def test_memory_is_bounded_by_forgetting_the_oldest_leases(
    shared: SharedBuckets, clock: FakeClock
) -> None:
    leases, _ = budget(shared, Gate(), clock, max_keys=10)
    for n in range(25):
        leases.check_now(f"c{n}", SLOW)
    assert leases.tracked_keys <= 10


def test_a_grant_takes_what_the_bucket_holds_up_to_what_was_wanted() -> None:
    policy = RatePolicy(name="p", rate=1.0, burst=10)
    tat, tokens, decision = gcra_grant(None, 100.0, policy, 4)
    assert (tokens, decision.remaining, tat) == (4, 6, 104.0)
    tat, tokens, decision = gcra_grant(107.0, 100.0, policy, 4)
    assert (tokens, decision.remaining, tat) == (3, 0, 110.0)
    tat, tokens, decision = gcra_grant(110.0, 100.0, policy, 4)
    assert (tokens, decision.allowed, tat) == (0, False, 110.0)
    assert decision.retry_after == pytest.approx(1.0)
    with pytest.raises(ValueError, match="wanted"):
        gcra_grant(None, 100.0, policy, 0)


# -- the Redis source: the same buckets as the ordinary path's checks -----------------------


@pytest.mark.redis
async def test_redis_leases_come_out_of_the_bucket_the_ordinary_path_checks(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    shared = RedisRateLimiter(redis_client, key_prefix=key_prefix)
    policy = RatePolicy(name="slow", rate=0.001, burst=10)
    for _ in range(3):
        assert (await shared.check("public-read:addr:a", policy)).allowed
    grants = await shared.lease_many(
        [Want("public-read:addr:a", policy, 4), Want("public-read:addr:b", policy, 4)]
    )
    assert [grant.tokens for grant in grants] == [4, 4]
    assert [grant.decision.remaining for grant in grants] == [3, 6]
    [partial] = await shared.lease_many([Want("public-read:addr:a", policy, 4)])
    assert (partial.tokens, partial.decision.remaining) == (3, 0)
    [empty] = await shared.lease_many([Want("public-read:addr:a", policy, 4)])
    assert (empty.tokens, empty.decision.allowed) == (0, False)
    assert empty.decision.retry_after > 0
    assert (await shared.check("public-read:addr:a", policy)).allowed is False


@pytest.mark.redis
async def test_redis_leases_load_the_script_again_after_a_flush(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    shared = RedisRateLimiter(redis_client, key_prefix=key_prefix)
    await redis_client.script_flush()
    [grant] = await shared.lease_many([Want("c", SLOW, 4)])
    assert (grant.tokens, grant.decision.remaining) == (4, SLOW.burst - 4)
