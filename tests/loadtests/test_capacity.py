"""The capacity step search and the median and spread of repetitions, with a fake server."""

from __future__ import annotations

import pytest

from loadtests.capacity import Step, find_capacity, spread


def knee_at(limit: float, seen: list[float]) -> object:
    def probe(rate: float) -> bool:
        seen.append(rate)
        return rate <= limit

    return probe


def test_steps_up_then_bisects_the_knee_to_the_precision_asked() -> None:
    seen: list[float] = []
    search = find_capacity(knee_at(300, seen), start=100, factor=2, precision=0.05)  # type: ignore[arg-type]
    assert seen[:3] == [100, 200, 400]
    assert search.steps[:3] == (Step(100, True), Step(200, True), Step(400, False))
    # Bisection: 300 passes, 350 fails, 325 fails, 312.5 fails: the gap is now under 5%.
    assert seen[3:] == [300, 350, 325, 312.5]
    assert search.capacity == 300
    assert not search.open_ended
    lowest_failing = min(step.rate for step in search.steps if not step.passed)
    assert (lowest_failing - search.capacity) / search.capacity <= 0.05


def test_steps_down_when_even_the_first_rate_fails() -> None:
    seen: list[float] = []
    search = find_capacity(knee_at(30, seen), start=100, factor=2, precision=0.1)  # type: ignore[arg-type]
    assert seen[:3] == [100, 50, 25]
    assert search.capacity >= 25
    assert search.capacity <= 30


def test_no_capacity_when_nothing_passes_above_the_floor() -> None:
    search = find_capacity(lambda rate: False, start=8, factor=2, floor=1)
    assert search.capacity == 0
    assert [step.rate for step in search.steps] == [8, 4, 2, 1]


def test_the_ceiling_leaves_the_search_open_ended() -> None:
    search = find_capacity(lambda rate: True, start=100, factor=2, ceiling=500)
    assert search.capacity == 400
    assert search.open_ended


def test_the_step_budget_is_respected() -> None:
    search = find_capacity(lambda rate: True, start=1, factor=2, max_steps=4)
    assert len(search.steps) == 4


@pytest.mark.parametrize(
    ("factor", "precision", "start"), [(1.0, 0.05, 10), (2, 0.0, 10), (2, 0.05, 0)]
)
def test_nonsense_search_parameters_are_refused(
    factor: float, precision: float, start: float
) -> None:
    with pytest.raises(ValueError, match="factor"):
        find_capacity(lambda rate: True, start=start, factor=factor, precision=precision)


def test_spread_is_the_median_and_the_range() -> None:
    found = spread([120.0, 80.0, 100.0])
    assert found is not None
    assert (found.median, found.low, found.high, found.count) == (100.0, 80.0, 120.0, 3)
    assert found.text() == "100 (80-120)"
    even = spread([1.0, 2.0, 3.0, 10.0])
    assert even is not None
    assert even.median == 2.5
    single = spread([7.25])
    assert single is not None
    assert single.text(1) == "7.2"
    assert spread([]) is None
