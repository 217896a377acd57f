"""Each route's admission policy as admission applies it: declared, with the operator's rate
overrides, looked up once per route name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from core.plugin_host.priority import Priority, RatePolicy
from core.plugin_host.routing import RoutePolicy

if TYPE_CHECKING:
    from core.plugin_host.routing import RouteRegistry
    from core.settings import RateOverride

# Requests that match no route still cost a little; they are limited like anonymous lists.
UNMATCHED = RoutePolicy(
    priority=Priority.SHEDDABLE, rate=RatePolicy(name="unmatched", rate=20.0, burst=40)
)


class RoutePolicies:
    """Policies by route name, with ``overrides`` (by rate policy name) applied, cached."""

    def __init__(self, overrides: Mapping[str, RateOverride]) -> None:
        self._overrides = overrides
        self._cache: dict[str | None, RoutePolicy] = {}

    def rate_for(self, policy: RatePolicy) -> RatePolicy:
        override = self._overrides.get(policy.name)
        if override is None:
            return policy
        return RatePolicy(name=policy.name, rate=override.rate, burst=override.burst)

    def get(self, route_name: str | None, routes: RouteRegistry) -> RoutePolicy:
        """The policy of ``route_name`` (None: no route matched); ``routes`` is asked once."""
        cached = self._cache.get(route_name)
        if cached is None:
            policy = routes.policy(route_name) or UNMATCHED
            rate = self.rate_for(policy.rate) if policy.rate is not None else None
            cached = RoutePolicy(
                priority=policy.priority,
                rate=rate,
                deadline=policy.deadline,
                bypass=policy.bypass,
                stream=policy.stream,
            )
            self._cache[route_name] = cached
        return cached
