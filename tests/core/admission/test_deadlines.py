"""A request's deadline: its arrival plus the client's Request-Timeout or the route's budget."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from core.admission.deadlines import MAX_REQUEST_TIMEOUT, request_deadline
from core.plugin_host.routing import RoutePolicy
from core.wire import keys as wire_keys

ARRIVAL = 1000.0
DEFAULT = 2.0


def deadline(policy: RoutePolicy, timeout: str | None = None) -> float:
    headers = {} if timeout is None else {"Request-Timeout": timeout}
    request = make_mocked_request("GET", "/", headers=headers)
    request[wire_keys.ARRIVAL] = ARRIVAL
    return request_deadline(request, policy, DEFAULT)


def test_without_a_header_the_routes_deadline_counts_from_arrival() -> None:
    assert deadline(RoutePolicy(deadline=0.5)) == ARRIVAL + 0.5


def test_without_either_the_default_counts_from_arrival() -> None:
    assert deadline(RoutePolicy()) == ARRIVAL + DEFAULT


def test_a_client_may_ask_for_less_or_more_than_the_route_up_to_the_cap() -> None:
    assert deadline(RoutePolicy(deadline=0.5), "0.05") == ARRIVAL + 0.05
    assert deadline(RoutePolicy(deadline=0.5), "30") == ARRIVAL + 30.0
    assert deadline(RoutePolicy(), "3600") == ARRIVAL + MAX_REQUEST_TIMEOUT


@pytest.mark.parametrize("header", ["0", "-1", "nan", "inf", "soon", ""])
def test_a_header_that_is_not_a_positive_finite_number_is_ignored(header: str) -> None:
    assert deadline(RoutePolicy(deadline=0.5), header) == ARRIVAL + 0.5
