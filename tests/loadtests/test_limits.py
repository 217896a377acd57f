"""The physical limit's arithmetic: g <= (B - λr) / (s - r), within λ and B / s."""

from __future__ import annotations

import pytest

from loadtests.limits import blended_cost, limit_lines, physical_limit


def test_refusals_eat_into_the_budget_as_the_flood_grows() -> None:
    # B = 0.2 CPU-s/s, s = 1 ms, r = 0.1 ms: C = 200/s.
    at_3x = physical_limit(budget=0.2, offered=600, serve=0.001, refuse=0.0001)
    at_10x = physical_limit(budget=0.2, offered=2000, serve=0.001, refuse=0.0001)
    assert at_3x == pytest.approx((0.2 - 600 * 0.0001) / 0.0009)  # 155.6/s
    assert at_10x == pytest.approx(0.0)  # 2000 x 0.1 ms is the whole budget


def test_below_capacity_everything_offered_can_be_served() -> None:
    assert physical_limit(budget=0.2, offered=100, serve=0.001, refuse=0.0001) == 100


def test_when_refusing_costs_as_much_as_serving_the_budget_alone_bounds() -> None:
    assert physical_limit(budget=0.2, offered=600, serve=0.001, refuse=0.001) == pytest.approx(200)


def test_a_flood_beyond_what_refusals_can_pay_for_leaves_nothing() -> None:
    assert physical_limit(budget=0.2, offered=5000, serve=0.001, refuse=0.0001) == 0.0


def test_bad_costs_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        physical_limit(budget=0.2, offered=10, serve=0.0, refuse=0.0)


def test_blended_cost_weights_the_mix_and_shares_the_connection() -> None:
    cost = blended_cost(
        {"read": 0.0004, "sign": 0.0017},
        {"read": 90, "sign": 10},
        connection_cost=0.0003,
        requests_per_connection=3,
    )
    assert cost == pytest.approx(0.9 * 0.0004 + 0.1 * 0.0017 + 0.0001)
    assert blended_cost({"read": 0.0004}, {"read": 1}) == 0.0004


def test_limit_lines_state_the_share_of_capacity() -> None:
    line_3x, line_10x = limit_lines(
        budget=0.2, capacity=200, serve=0.001, refuse=0.0001, multiples=(3, 10)
    )
    assert line_3x.offered == 600
    assert line_3x.share_of_capacity == pytest.approx(155.5555 / 200, rel=1e-4)
    assert "at 3x (600/s offered): at most 156/s = 78% of 200/s" in line_3x.text()
    assert line_10x.limit == pytest.approx(0.0)
