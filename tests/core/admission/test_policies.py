"""Route policies as admission applies them: declared, overridden by the operator, cached."""

from __future__ import annotations

from aiohttp import web

from core.admission.policies import UNMATCHED, RoutePolicies
from core.plugin_host.priority import Priority, RatePolicy
from core.plugin_host.routing import RoutePolicy, RouteRegistry
from core.settings import RateOverride

READ = RatePolicy(name="read", rate=50.0, burst=100)
SIGN = RatePolicy(name="sign", rate=1.0, burst=10)


async def _handler(request: web.Request) -> web.Response:
    raise AssertionError  # never called: only the policies are read


def registry() -> RouteRegistry:
    routes = RouteRegistry()
    routes.add(
        "GET",
        "/read",
        _handler,
        name="read",
        summary="",
        policy=RoutePolicy(priority=Priority.NORMAL, rate=READ, deadline=0.5),
    )
    routes.add(
        "POST",
        "/sign",
        _handler,
        name="sign",
        summary="",
        policy=RoutePolicy(priority=Priority.CRITICAL, rate=SIGN),
    )
    return routes


def test_a_request_that_matched_no_route_gets_the_unmatched_policy() -> None:
    assert RoutePolicies({}).get(None, registry()) == UNMATCHED


def test_an_operators_override_replaces_the_rate_and_keeps_the_rest() -> None:
    policies = RoutePolicies({"read": RateOverride(rate=5.0, burst=7)})
    read = policies.get("read", registry())
    assert read == RoutePolicy(
        priority=Priority.NORMAL, rate=RatePolicy(name="read", rate=5.0, burst=7), deadline=0.5
    )
    assert policies.get("sign", registry()).rate is SIGN


def test_a_rate_without_an_override_is_returned_as_declared() -> None:
    assert RoutePolicies({"other": RateOverride(rate=5.0, burst=7)}).rate_for(SIGN) is SIGN


def test_each_route_is_looked_up_once() -> None:
    policies = RoutePolicies({})
    first = policies.get("read", registry())
    assert policies.get("read", RouteRegistry()) is first
