"""One app's admission state: limits, the controller, the rate limiter and the delay signal.

Building it does no I/O; ``core.host.admission_wiring`` connects it to Redis, the connection guard
and the loop-lag probe for the app's lifetime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.admission.clients import client_addressing
from core.admission.concurrency import FixedLimit, Gradient2Limit, LimitAlgorithm
from core.admission.controller import AdmissionController
from core.admission.gcra import LocalRateLimiter, RateLimiter
from core.admission.inflight import InFlight
from core.admission.kernel import StandingWait
from core.admission.pie import TICK, PieController
from core.admission.policies import RoutePolicies
from core.admission.sojourn import SojournMeter
from core.plugin_host import keys as plugin_host_keys

if TYPE_CHECKING:
    from aiohttp import web

    from core.admission.edge import EdgeShedder
    from core.observability.metrics import Metrics
    from core.plugin_host.priority import Priority, RatePolicy
    from core.plugin_host.routing import RoutePolicy
    from core.settings import Settings


class Admission:
    """Limits, the controller, the rate limiter, and the drop probability the edge applies."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings.admission
        self.metrics = metrics
        self.trusted = client_addressing(settings.server)
        limit: LimitAlgorithm
        if self.settings.fixed_limit is not None:
            limit = FixedLimit(limit=self.settings.fixed_limit)
        else:
            limit = Gradient2Limit(
                initial_limit=self.settings.initial_limit,
                min_limit=self.settings.min_limit,
                max_limit=self.settings.max_limit,
            )
        self.controller = AdmissionController(
            limit=limit,
            queue_capacity=self.settings.queue_capacity,
            critical_reserve=self.settings.critical_reserve,
            codel_target=self.settings.codel_target,
            codel_interval=self.settings.codel_interval,
            on_shed=self._count_shed,
            on_wait=lambda priority, waited: metrics.admission_queue_wait.labels(
                priority.name.lower()
            ).observe(waited),
        )
        # The local limiter answers alone without Redis, and behind it (and for the fast lane,
        # which cannot wait for a round trip) with Redis.
        self.local_limiter = LocalRateLimiter()
        self.limiter: RateLimiter = self.local_limiter
        self.policies = RoutePolicies(self.settings.rate_overrides)
        self.sojourn = SojournMeter()
        # How long accepted connections had waited in the kernel (core.admission.kernel), and
        # whether that wait stands (only then does the edge refuse by it).
        self.kernel_wait = SojournMeter()
        self.kernel_standing = StandingWait(
            target=self.settings.kernel_age_target, interval=self.settings.codel_interval
        )
        self.pie = PieController(target=self.settings.sojourn_target, update_interval=TICK)
        self.writer_pressure = 0.0
        self.inflight = InFlight(
            per_address=self.settings.max_inflight_per_address,
            per_citizen=self.settings.max_inflight_per_citizen,
        )
        self.edge: EdgeShedder | None = None

    def _count_shed(self, reason: str, priority: Priority) -> None:
        self.metrics.admission_rejected.labels(reason, priority.name.lower()).inc()

    def rate_for(self, policy: RatePolicy) -> RatePolicy:
        """``policy`` with the operator's override of its rate, if any."""
        return self.policies.rate_for(policy)

    def policy(self, app: web.Application, route_name: str | None) -> RoutePolicy:
        """The route's declared policy with the operator's rate overrides applied, cached."""
        return self.policies.get(route_name, app[plugin_host_keys.ROUTES])
