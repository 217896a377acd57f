from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from core.admission.gcra import LocalRateLimiter, RateDecision, gcra_step, ratelimit_headers
from core.plugin_host.priority import RatePolicy

if TYPE_CHECKING:
    from tests.support.admission import Backend, FakeClock

# Ten seconds between tokens: no token comes back while a test runs, even on Redis's clock.
SLOW = RatePolicy(name="slow", rate=0.1, burst=3)
# A quarter of a second between tokens, for tests that wait for one to come back.
QUICK = RatePolicy(name="quick", rate=4.0, burst=2)


# -- the pure step -------------------------------------------------------------------------


def test_full_bucket_admits_exactly_burst_requests_at_one_instant() -> None:
    policy = RatePolicy(name="p", rate=20.0, burst=5)
    tat: float | None = None
    allowed = []
    for _ in range(7):
        tat, decision = gcra_step(tat, 100.0, policy)
        allowed.append(decision.allowed)
    assert allowed == [True] * 5 + [False] * 2


def test_drained_bucket_admits_one_request_per_emission_interval() -> None:
    policy = RatePolicy(name="p", rate=20.0, burst=5)
    tat: float | None = None
    for _ in range(5):
        tat, _ = gcra_step(tat, 100.0, policy)
    tat, early = gcra_step(tat, 100.0 + 0.049, policy)
    tat, on_time = gcra_step(tat, 100.0 + 0.05, policy)
    tat, second = gcra_step(tat, 100.0 + 0.05, policy)
    assert (early.allowed, on_time.allowed, second.allowed) == (False, True, False)


def test_allowed_step_reports_remaining_and_reset_and_no_retry() -> None:
    policy = RatePolicy(name="p", rate=2.0, burst=4)
    tat, first = gcra_step(None, 10.0, policy)
    _, second = gcra_step(tat, 10.0, policy)
    assert first == RateDecision(
        allowed=True, limit=4, remaining=3, reset_after=0.5, retry_after=0.0
    )
    assert second == RateDecision(
        allowed=True, limit=4, remaining=2, reset_after=1.0, retry_after=0.0
    )


def test_denied_step_keeps_the_tat_and_reports_when_to_retry() -> None:
    policy = RatePolicy(name="p", rate=2.0, burst=2)
    tat, _ = gcra_step(None, 10.0, policy)
    tat, _ = gcra_step(tat, 10.0, policy)
    new_tat, denied = gcra_step(tat, 10.2, policy)
    assert new_tat == tat
    assert denied.allowed is False
    assert denied.remaining == 0
    assert denied.reset_after == pytest.approx(0.8)
    assert denied.retry_after == pytest.approx(0.3)


def test_cost_above_burst_is_denied_without_creating_state() -> None:
    policy = RatePolicy(name="p", rate=1.0, burst=2)
    tat, decision = gcra_step(None, 10.0, policy, cost=3)
    assert tat is None
    assert (decision.allowed, decision.remaining) == (False, 2)


def test_cost_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="cost"):
        gcra_step(None, 10.0, SLOW, cost=0)


# -- the shared behaviour of both backends --------------------------------------------------


@pytest.mark.asyncio
async def test_burst_is_allowed_then_denied(backend: Backend) -> None:
    decisions = [await backend.limiter.check("citizen", SLOW) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert {d.limit for d in decisions} == {3}


@pytest.mark.asyncio
async def test_a_token_comes_back_after_one_emission_interval(backend: Backend) -> None:
    for _ in range(2):
        assert (await backend.limiter.check("citizen", QUICK)).allowed
    assert not (await backend.limiter.check("citizen", QUICK)).allowed
    await backend.wait(QUICK.emission_interval)
    assert (await backend.limiter.check("citizen", QUICK)).allowed


@pytest.mark.asyncio
async def test_allowed_decision_reports_reset_as_the_time_to_refill(backend: Backend) -> None:
    await backend.limiter.check("citizen", SLOW)
    second = await backend.limiter.check("citizen", SLOW)
    assert second.retry_after == 0.0
    backend.assert_seconds(second.reset_after, 20.0)


@pytest.mark.asyncio
async def test_denied_decision_reports_retry_after_one_interval(backend: Backend) -> None:
    for _ in range(3):
        await backend.limiter.check("citizen", SLOW)
    denied = await backend.limiter.check("citizen", SLOW)
    assert (denied.allowed, denied.remaining) == (False, 0)
    backend.assert_seconds(denied.retry_after, 10.0)
    backend.assert_seconds(denied.reset_after, 30.0)


@pytest.mark.asyncio
async def test_keys_and_policies_have_independent_buckets(backend: Backend) -> None:
    other_policy = RatePolicy(name="other", rate=0.1, burst=3)
    for _ in range(3):
        await backend.limiter.check("alice", SLOW)
    assert not (await backend.limiter.check("alice", SLOW)).allowed
    bob = await backend.limiter.check("bob", SLOW)
    alice_elsewhere = await backend.limiter.check("alice", other_policy)
    assert (bob.allowed, bob.remaining) == (True, 2)
    assert (alice_elsewhere.allowed, alice_elsewhere.remaining) == (True, 2)


@pytest.mark.asyncio
async def test_cost_consumes_that_many_tokens_or_none(backend: Backend) -> None:
    policy = RatePolicy(name="bulk", rate=0.1, burst=5)
    first = await backend.limiter.check("citizen", policy, cost=3)
    too_big = await backend.limiter.check("citizen", policy, cost=3)
    fits = await backend.limiter.check("citizen", policy, cost=2)
    assert (first.allowed, first.remaining) == (True, 2)
    assert (too_big.allowed, too_big.remaining) == (False, 2)
    backend.assert_seconds(too_big.retry_after, 10.0)
    assert (fits.allowed, fits.remaining) == (True, 0)


@pytest.mark.asyncio
async def test_headers_of_real_decisions(backend: Backend) -> None:
    allowed = await backend.limiter.check("citizen", SLOW)
    for _ in range(2):
        await backend.limiter.check("citizen", SLOW)
    denied = await backend.limiter.check("citizen", SLOW)
    assert ratelimit_headers(SLOW, allowed) == {
        "RateLimit-Policy": '"slow";q=3;w=30',
        "RateLimit": '"slow";r=2;t=10',
    }
    assert ratelimit_headers(SLOW, denied) == {
        "RateLimit-Policy": '"slow";q=3;w=30',
        "RateLimit": '"slow";r=0;t=10',
        "Retry-After": "10",
    }


# -- headers --------------------------------------------------------------------------------


def test_headers_round_sub_second_times_up_to_one_second() -> None:
    policy = RatePolicy(name="sign", rate=20.0, burst=5)
    allowed = RateDecision(allowed=True, limit=5, remaining=4, reset_after=0.05, retry_after=0.0)
    denied = RateDecision(allowed=False, limit=5, remaining=0, reset_after=0.25, retry_after=0.01)
    assert ratelimit_headers(policy, allowed) == {
        "RateLimit-Policy": '"sign";q=5;w=1',
        "RateLimit": '"sign";r=4;t=1',
    }
    assert ratelimit_headers(policy, denied) == {
        "RateLimit-Policy": '"sign";q=5;w=1',
        "RateLimit": '"sign";r=0;t=1',
        "Retry-After": "1",
    }


def test_headers_ignore_float_noise_when_rounding_up() -> None:
    policy = RatePolicy(name="hourly", rate=1 / 60, burst=10)
    decision = RateDecision(
        allowed=True, limit=10, remaining=9, reset_after=60.0000000001, retry_after=0.0
    )
    assert ratelimit_headers(policy, decision) == {
        "RateLimit-Policy": '"hourly";q=10;w=600',
        "RateLimit": '"hourly";r=9;t=60',
    }


def test_headers_escape_the_policy_name_as_a_structured_string() -> None:
    policy = RatePolicy(name='say "hi" \\ bye', rate=1.0, burst=1)
    decision = RateDecision(allowed=True, limit=1, remaining=0, reset_after=1.0, retry_after=0.0)
    headers = ratelimit_headers(policy, decision)
    assert headers["RateLimit-Policy"] == '"say \\"hi\\" \\\\ bye";q=1;w=1'


# -- the local limiter's memory bound -------------------------------------------------------


@pytest.mark.asyncio
async def test_local_limiter_forgets_refilled_keys_before_live_ones(clock: FakeClock) -> None:
    policy = RatePolicy(name="p", rate=1.0, burst=1)
    limiter = LocalRateLimiter(max_keys=10, clock=clock)
    for index in range(5):
        await limiter.check(f"early{index}", policy)
    clock.advance(0.9)
    for index in range(5):
        await limiter.check(f"late{index}", policy)
    clock.advance(0.1)  # the early buckets are full again, the late ones are not
    await limiter.check("newcomer", policy)
    assert limiter.tracked_keys == 6
    assert not (await limiter.check("late0", policy)).allowed


@pytest.mark.asyncio
async def test_local_limiter_evicts_least_recently_admitted_when_all_are_live(
    clock: FakeClock,
) -> None:
    policy = RatePolicy(name="p", rate=0.1, burst=2)
    limiter = LocalRateLimiter(max_keys=10, clock=clock)
    for index in range(10):
        await limiter.check(f"key{index}", policy)
    await limiter.check("key0", policy)  # key0 is now the most recently admitted
    await limiter.check("newcomer", policy)
    key0 = await limiter.check("key0", policy)
    key1 = await limiter.check("key1", policy)
    assert limiter.tracked_keys == 10
    assert key0.allowed is False  # remembered: its two tokens are spent
    assert (key1.allowed, key1.remaining) == (True, 1)  # forgotten: a fresh bucket


@pytest.mark.asyncio
async def test_local_limiter_does_not_store_denied_newcomers(clock: FakeClock) -> None:
    policy = RatePolicy(name="p", rate=1.0, burst=1)
    limiter = LocalRateLimiter(clock=clock)
    await limiter.check("citizen", policy, cost=2)
    assert limiter.tracked_keys == 0
