"""The middleware-cost benchmark drives each case to the status it names, in every round."""

from __future__ import annotations

from loadtests.middleware_cost import measure


async def test_each_case_is_answered_as_named_and_timed_in_every_round() -> None:
    figures = await measure(rounds=2, per_round=5)
    assert sorted(figures) == [
        "GET dropped at deadline, citizen token",
        "POST refused, storage saturated, citizen token",
        "served GET, anonymous",
        "served GET, citizen token",
    ]
    assert all(len(values) == 2 and min(values) >= 0 for values in figures.values())
