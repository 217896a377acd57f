"""Priority classes and rate policies shared by every admission primitive."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class Priority(enum.IntEnum):
    """How important a request is; a lower value is more important and is shed last."""

    CRITICAL = 0
    NORMAL = 1
    SHEDDABLE = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class RatePolicy:
    """A named GCRA policy: ``rate`` requests per second sustained, ``burst`` at once."""

    name: str
    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a rate policy needs a non-empty name")
        # The name is sent as a structured-field string, which admits printable ASCII only.
        if not all(" " <= char <= "~" for char in self.name):
            raise ValueError(f"rate policy name must be printable ASCII: {self.name!r}")
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"rate must be finite and > 0, got {self.rate}")
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst}")

    @property
    def emission_interval(self) -> float:
        """Seconds between two requests at the sustained rate (GCRA's T)."""
        return 1.0 / self.rate

    @property
    def window_seconds(self) -> float:
        """Seconds a drained bucket takes to fill up again."""
        return self.burst / self.rate
