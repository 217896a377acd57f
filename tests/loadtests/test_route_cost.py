"""The route-cost benchmark measures each way of calling the handler, and the table's answer is
the handler's."""

from __future__ import annotations

from core.plugin_host.routing import endpoint
from loadtests.route_cost import ANSWER, ROUTES, measure, request_with_identity


async def test_each_candidate_is_measured_in_every_round() -> None:
    figures = await measure(rounds=2, number=5)
    assert sorted(figures) == [
        "the bare handler",
        "the handler checking itself",
        "through the route table",
    ]
    assert all(len(values) == 2 and min(values) > 0 for values in figures.values())


async def test_the_measured_route_passes_its_checks_and_answers_from_the_handler() -> None:
    [spec] = list(ROUTES)
    assert await endpoint(spec)(request_with_identity()) is ANSWER
