"""Load shapes for the Qatysu scenarios, opt-in: pass this file after the locustfile.

    locust -f loadtests/locustfile.py,loadtests/shapes.py --class-picker      # pick in the web UI
    QATYSU_SHAPE=FlashCrowd locust -f loadtests/locustfile.py,loadtests/shapes.py --headless \\
        -u 20 -t 3m --host ...

Every shape scales with Locust's own options: ``-u`` is the baseline number of users, ``-r``
the ramp rate where the shape has one, ``-t`` the total duration (each shape has a default).
Headless, Locust runs the first shape it finds, so ``QATYSU_SHAPE`` names the one to run; the
others then stay out of Locust's sight.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from typing import Any, ClassVar

from locust import LoadTestShape

SHAPE_VARIABLE = "QATYSU_SHAPE"
SHAPE_NAMES = ("Steady", "FlashCrowd", "DeadlineRush", "Soak")

_chosen = os.environ.get(SHAPE_VARIABLE, "").strip()
if _chosen and _chosen not in SHAPE_NAMES:
    raise SystemExit(f"{SHAPE_VARIABLE}={_chosen!r} is not a shape; choose one of {SHAPE_NAMES}")


def hidden_unless_chosen(name: str) -> bool:
    """Abstract (invisible to Locust) when another shape was chosen."""
    return bool(_chosen) and _chosen != name


class QatysuShape(LoadTestShape):
    """A user count as a function of time, scaled by ``-u`` and lasting ``-t``."""

    abstract: ClassVar[bool] = True
    use_common_options: ClassVar[bool] = True
    default_seconds: ClassVar[float] = 60.0

    def option(self, name: str) -> Any:
        runner = self.runner
        options = runner.environment.parsed_options if runner is not None else None
        return getattr(options, name, None) if options is not None else None

    @property
    def baseline(self) -> int:
        return max(1, int(self.option("num_users") or 1))

    @property
    def ramp_rate(self) -> float:
        return float(self.option("spawn_rate") or self.baseline)

    @property
    def duration(self) -> float:
        return float(self.option("run_time") or self.default_seconds)

    def tick(self) -> tuple[int, float] | None:
        elapsed: float = self.get_run_time()  # type: ignore[no-untyped-call]
        if elapsed >= self.duration:
            return None
        return self.at(elapsed / self.duration)

    @abstractmethod
    def at(self, progress: float) -> tuple[int, float]:
        """Users and spawn rate at ``progress`` (0 to 1) through the run."""


class Steady(QatysuShape):
    """The baseline, held: what an ordinary day looks like (60 s unless -t)."""

    abstract = hidden_unless_chosen("Steady")

    def at(self, progress: float) -> tuple[int, float]:
        return self.baseline, self.ramp_rate


class FlashCrowd(QatysuShape):
    """A petition goes viral: the baseline, then ten times as many users within about five
    seconds, then back to the baseline to show the recovery. Every petition read and signature
    of the scenarios goes to the stage's one petition, so the crowd converges on it. Quarters:
    baseline, crowd, crowd, recovery (3 min unless -t)."""

    abstract = hidden_unless_chosen("FlashCrowd")
    default_seconds = 180.0
    multiple: ClassVar[int] = 10
    surge_seconds: ClassVar[float] = 5.0

    def at(self, progress: float) -> tuple[int, float]:
        crowd = self.baseline * self.multiple
        surge_rate = (crowd - self.baseline) / self.surge_seconds
        if progress < 0.25:
            return self.baseline, self.ramp_rate
        if progress < 0.75:
            return crowd, surge_rate
        return self.baseline, surge_rate  # the crowd leaves as fast as it came


class DeadlineRush(QatysuShape):
    """A consultation closes tonight: users climb from the baseline to five times it as the
    deadline nears, then fall back to a fifth of the baseline once it has passed. The climb
    takes 80% of the run (5 min unless -t)."""

    abstract = hidden_unless_chosen("DeadlineRush")
    default_seconds = 300.0
    peak_multiple: ClassVar[int] = 5
    climb_share: ClassVar[float] = 0.8

    def at(self, progress: float) -> tuple[int, float]:
        peak = self.baseline * self.peak_multiple
        climb_seconds = self.duration * self.climb_share
        if progress < self.climb_share:
            users = self.baseline + (peak - self.baseline) * progress / self.climb_share
            # A rate that keeps up with the climb, so the count follows the curve.
            return round(users), max(1.0, (peak - self.baseline) / climb_seconds * 2)
        return max(1, self.baseline // 5), float(peak)


class Soak(QatysuShape):
    """The baseline for an hour (unless -t): leaks, growing queues and slow drifts show here,
    not in a short run."""

    abstract = hidden_unless_chosen("Soak")
    default_seconds = 3600.0

    def at(self, progress: float) -> tuple[int, float]:
        return self.baseline, self.ramp_rate
