"""How long requests waited before admission saw them: the sojourn time PIE acts on.

The connection layer stamps each request head when its bytes arrive; admission adds now minus
that stamp for every request it sees, and the observer takes the mean once a tick.
"""

from __future__ import annotations


class SojournMeter:
    """Sojourn times (admission minus arrival) of the requests admitted since the last read.

    A tick in which no request reached admission says nothing about the queue, so the last
    mean holds for up to ``hold`` seconds: read as zero, a gap between two slow requests would
    look like the delay vanishing and back, and PIE's trend term would swing with it.
    """

    __slots__ = ("_count", "_held_until", "_hold", "_last", "_total")

    def __init__(self, *, hold: float = 1.0) -> None:
        self._total = 0.0
        self._count = 0
        self._hold = hold
        self._last = 0.0
        self._held_until = 0.0

    def add(self, seconds: float) -> None:
        self._total += seconds
        self._count += 1

    def take_mean(self, now: float) -> float:
        """The mean since the last call (the previous one while held, else 0.0 when nothing
        arrived), and start over."""
        if self._count:
            self._last = self._total / self._count
            self._held_until = now + self._hold
            self._total, self._count = 0.0, 0
        elif now >= self._held_until:
            self._last = 0.0
        return self._last
