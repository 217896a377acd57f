"""Per-request cost of the route table: a declared route's enforcement against the bare handler.

The route table checks the caller's role, parses the query into its model and hands both to the
handler. This measures what that costs per request, with a mocked request and a handler that
does nothing, so that nothing else is in the figure. The same handler is called through
``core.plugin_host.routing.endpoint``; by a handler that checks the role and parses the query
itself, as handlers did before routes were declared; and bare, with the identity and query at
hand. The three run in interleaved rounds, so that a noisy neighbour slows them alike. The
figures are the median and the spread over the rounds.

    .venv/bin/python -m loadtests.route_cost [--rounds 15] [--number 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pydantic import BaseModel, Field

from core.identity import keys as identity_keys
from core.identity.identities import Identity, Role
from core.identity.tokens import ensure_role
from core.plugin_host.routing import RoutePolicy, Routes, endpoint
from core.wire.bodies import query_model
from loadtests.options import add_number, add_rounds


class Page(BaseModel):
    limit: int | None = Field(default=None, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=200)


ROUTES = Routes("/bench")
ANSWER = web.Response(status=204)


@ROUTES.get(
    "", name="bench.page", summary="A page", policy=RoutePolicy(), roles=Role.CITIZEN, query=Page
)
async def page(request: web.Request, identity: Identity, query: Page) -> web.Response:
    return ANSWER


CITIZENS = frozenset({Role.CITIZEN})


async def checking_for_itself(request: web.Request) -> web.Response:
    identity = ensure_role(request.get(identity_keys.IDENTITY), CITIZENS)
    return await page(request, identity=identity, query=query_model(request, Page))


def request_with_identity() -> web.Request:
    request = make_mocked_request("GET", "/bench?limit=20")
    request[identity_keys.IDENTITY] = Identity(
        subject="a" * 64, role=Role.CITIZEN, name="Aigerim S."
    )
    return request


async def per_call(call: Callable[[], Awaitable[object]], number: int) -> float:
    started = time.perf_counter()
    for _ in range(number):
        await call()
    return (time.perf_counter() - started) / number


async def measure(rounds: int, number: int) -> dict[str, list[float]]:
    [spec] = list(ROUTES)
    declared = endpoint(spec)
    request = request_with_identity()
    identity = request[identity_keys.IDENTITY]
    query = Page(limit=20)
    candidates: dict[str, Callable[[], Awaitable[object]]] = {
        "through the route table": lambda: declared(request),
        "the handler checking itself": lambda: checking_for_itself(request),
        "the bare handler": lambda: page(request, identity=identity, query=query),
    }
    figures: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, call in candidates.items():
            figures[name].append(await per_call(call, number))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.route_cost", description=__doc__)
    add_rounds(parser)
    add_number(parser, help="requests per round")
    arguments = parser.parse_args()
    figures = asyncio.run(measure(arguments.rounds, arguments.number))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    for name, values in figures.items():
        print(
            f"{name:>28}: median {medians[name] * 1e6:7.2f} µs"
            f" (min {min(values) * 1e6:.2f}, max {max(values) * 1e6:.2f}) per request"
        )
    for baseline in ("the handler checking itself", "the bare handler"):
        added = medians["through the route table"] - medians[baseline]
        print(f"{'the table adds, against ' + baseline:>52}: {added * 1e6:7.2f} µs per request")


if __name__ == "__main__":
    main()
