"""A drop probability driven by measured delay, after PIE (RFC 8033).

In one event loop the queue that matters is not admission's own: it is the kernel's socket
buffers and the loop's ready list, where a request waits before any middleware sees it. The
connection layer stamps each request when its bytes arrive, so admission knows each request's
*sojourn* (now minus arrival); the loop's own lateness measures the part of the queue no stamp
can see (bytes not yet read). ``PieController`` turns the larger of the two into a drop
probability with a proportional-integral step, every ``update_interval``::

    p += alpha * (delay - target) + beta * (delay - previous_delay)

``alpha`` pulls the delay towards the target, ``beta`` reacts to its trend. As in RFC 8033,
both are scaled down while ``p`` is small, so a light overload is answered by a light drop rate
rather than by steps that overshoot, and ``p`` decays by 2% an update while the delay stays
below half the target.
Unlike an on/off trigger it reacts to delay only: a shed, a disconnect or a deadline drop does
not feed back into it, so refusals cannot raise their own rate.
"""

from __future__ import annotations

from dataclasses import dataclass

# Admission's drop probability is updated every tick of the loop-lag probe
# (``core.http.lifecycle``), so the tick is as fine as it needs.
TICK = 0.015

# RFC 8033, section 4.2: while p is below each bound, alpha and beta are divided by the factor.
_SCALING = ((1e-6, 2048.0), (1e-5, 512.0), (1e-4, 128.0), (1e-3, 32.0), (1e-2, 8.0), (1e-1, 2.0))
_DECAY = 0.98


@dataclass(kw_only=True)
class PieController:
    """See the module docstring. ``update`` once per ``update_interval`` (late calls scale)."""

    target: float = 0.020
    update_interval: float = 0.015
    alpha: float = 0.125
    beta: float = 1.25
    max_probability: float = 0.98
    probability: float = 0.0
    previous_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.target <= 0 or self.update_interval <= 0:
            raise ValueError("target and update_interval must be positive")
        if not 0.0 < self.max_probability <= 1.0:
            raise ValueError("max_probability must be in (0, 1]")

    def update(self, delay: float, elapsed: float | None = None) -> float:
        """Take the delay measured over the last ``elapsed`` seconds; return the new probability.

        A late update (``elapsed`` longer than the interval) counts as that many updates, or the
        controller would lag behind the very overload that made it late.
        """
        steps = 1.0 if elapsed is None else max(1.0, elapsed / self.update_interval)
        scale = 1.0
        for bound, factor in _SCALING:
            if self.probability < bound:
                scale = 1.0 / factor
                break
        # The proportional term accrues per interval elapsed; the trend term once per change.
        probability = self.probability + scale * (
            self.alpha * (delay - self.target) * steps + self.beta * (delay - self.previous_delay)
        )
        calm = self.target / 2
        if delay < calm and self.previous_delay < calm:
            probability *= _DECAY**steps
        self.previous_delay = delay
        self.probability = min(self.max_probability, max(0.0, probability))
        return self.probability
