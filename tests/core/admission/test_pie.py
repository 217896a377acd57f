"""PIE: the drop probability follows measured delay, not refusals."""

from __future__ import annotations

import pytest

from core.admission.pie import PieController


def test_delay_above_the_target_raises_the_probability_step_by_step() -> None:
    pie = PieController(target=0.020)
    seen = [pie.update(0.100) for _ in range(100)]
    assert seen == sorted(seen)
    assert 0.0 < seen[0] < 0.01
    assert seen[-1] > 0.75


def test_a_first_small_step_is_scaled_down_as_rfc_8033_asks() -> None:
    pie = PieController(target=0.020)
    # alpha*(0.03-0.02) + beta*(0.03-0) = 0.03875, divided by 2048 while p < 1e-6.
    assert pie.update(0.030) == pytest.approx(0.03875 / 2048)


def test_delay_below_the_target_brings_the_probability_back_to_zero() -> None:
    pie = PieController(target=0.020, probability=0.5, previous_delay=0.005)
    for _ in range(400):
        pie.update(0.001)
    assert pie.probability == 0.0


def test_a_late_update_counts_as_every_interval_that_elapsed() -> None:
    once = PieController(target=0.020, probability=0.2, previous_delay=0.060)
    late = PieController(target=0.020, probability=0.2, previous_delay=0.060)
    once.update(0.060, elapsed=0.015)
    late.update(0.060, elapsed=0.150)
    assert late.probability - 0.2 == pytest.approx(10 * (once.probability - 0.2))


def test_the_probability_never_leaves_its_bounds() -> None:
    pie = PieController(target=0.020, max_probability=0.9)
    for _ in range(500):
        pie.update(5.0)
    assert pie.probability == 0.9
    with pytest.raises(ValueError, match="max_probability"):
        PieController(max_probability=0.0)
