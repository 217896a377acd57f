"""The sojourn meter: the mean wait before admission, held across quiet ticks."""

from __future__ import annotations

import pytest

from core.admission.sojourn import SojournMeter


def test_a_tick_without_requests_holds_the_last_sojourn_for_a_while() -> None:
    meter = SojournMeter(hold=1.0)
    meter.add(0.2)
    meter.add(0.4)
    assert meter.take_mean(100.0) == pytest.approx(0.3)
    assert meter.take_mean(100.5) == pytest.approx(0.3)
    assert meter.take_mean(101.0) == 0.0
    meter.add(0.1)
    assert meter.take_mean(101.1) == pytest.approx(0.1)
