"""Open-loop capacity by step search, and the median and spread of repeated runs.

Capacity is the highest offered rate at which at least 99% of the requests due get a 2xx within
the SLO. A closed-loop tool would find the rate the server sustains while its clients wait for
it; an open-loop step finds the rate the server keeps up with while nobody waits.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# The share of the requests due that must get a 2xx within the SLO for a step to pass.
CAPACITY_GOOD_SHARE = 0.99


@dataclass(frozen=True)
class Step:
    rate: float
    passed: bool


@dataclass(frozen=True)
class CapacitySearch:
    capacity: float
    steps: tuple[Step, ...]
    # True when no failing step bounded the search: capacity may be higher than found.
    open_ended: bool


def find_capacity(
    probe: Callable[[float], bool],
    *,
    start: float,
    factor: float = 1.5,
    precision: float = 0.05,
    ceiling: float = float("inf"),
    floor: float = 1.0,
    max_steps: int = 16,
) -> CapacitySearch:
    """Step the rate up by ``factor`` until a step fails, then bisect the knee.

    Bisection stops once the gap between the best passing rate and the lowest failing one is at
    most ``precision`` of the passing rate (steps of 10% or finer near the knee). If even
    ``start`` fails, the rate steps down by ``factor`` until one passes or ``floor`` is reached.
    """
    if factor <= 1 or not 0 < precision < 1 or start <= 0:
        raise ValueError("factor must be > 1, precision in (0, 1) and start > 0")
    steps: list[Step] = []

    def run(rate: float) -> bool:
        passed = probe(rate)
        steps.append(Step(rate, passed))
        return passed

    passing = 0.0
    failing = float("inf")
    rate = start
    while len(steps) < max_steps:
        if run(rate):
            passing = rate
            if rate * factor > ceiling:
                break
            rate = rate * factor
            if failing < float("inf"):
                break
        else:
            failing = rate
            if passing > 0:
                break
            rate = rate / factor
            if rate < floor:
                break
    while passing > 0 and failing < float("inf") and len(steps) < max_steps:
        if (failing - passing) <= precision * passing:
            break
        middle = (passing + failing) / 2
        if run(middle):
            passing = middle
        else:
            failing = middle
    return CapacitySearch(capacity=passing, steps=tuple(steps), open_ended=failing == float("inf"))


@dataclass(frozen=True)
class Spread:
    """The median of repeated measurements and their range."""

    median: float
    low: float
    high: float
    count: int

    def text(self, digits: int = 0) -> str:
        if self.count == 1:
            return f"{self.median:,.{digits}f}"
        return f"{self.median:,.{digits}f} ({self.low:,.{digits}f}-{self.high:,.{digits}f})"


def spread(values: Sequence[float]) -> Spread | None:
    if not values:
        return None
    return Spread(statistics.median(values), min(values), max(values), len(values))
