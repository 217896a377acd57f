"""Per-request CPU time of the middleware stack, in process: ``app._handle`` on pre-built
requests to a handler that does nothing, timed with ``time.process_time`` so that other
processes on a shared core count less. The cases are a served read with and without a token,
a write refused while storage is saturated, and a read dropped at its deadline, interleaved in
rounds; the figures are the median and the spread over the rounds, in microseconds.

It measures whichever tree is first on ``sys.path``, so the same file compares two trees (a
change to the middleware order, say) run side by side:

    PYTHONPATH=<tree> taskset -c 1 .venv/bin/python -m loadtests.middleware_cost [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

import core
from core.admission import keys as admission_keys
from core.host.app import create_app
from core.identity.tokens import mint_token
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.priority import Priority, RatePolicy
from core.plugin_host.routing import RoutePolicy
from core.settings import build_settings
from core.storage.writer import Writer
from plugins.kazakhstan.iin import synthetic_iin

JWT_SECRET = "bench-jwt-secret-that-is-long-enough-0123456789"
IIN_SECRET = "bench-iin-secret-that-is-long-enough-0123456"
UNLIMITED = RatePolicy(name="bench", rate=1e9, burst=10**9)


class Bench:
    @hookimpl
    def qatysu_add_routes(self, routes: Any, app: web.Application) -> None:
        async def ok(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        for method, priority in (("GET", Priority.NORMAL), ("POST", Priority.CRITICAL)):
            routes.add(
                method,
                "/bench/{name}",
                ok,
                name=f"bench.{method.lower()}",
                summary="",
                policy=RoutePolicy(priority=priority, rate=UNLIMITED),
            )


class Transport:
    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        pass


async def measure(rounds: int, per_round: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as data_dir:
        return await measure_in(data_dir, rounds, per_round)


async def measure_in(data_dir: str, rounds: int, per_round: int) -> dict[str, list[float]]:
    settings = build_settings(
        {
            "server": {"data_dir": data_dir, "access_log": False},
            "identity": {"jwt_secret": JWT_SECRET, "iin_hash_secret": IIN_SECRET},
            "database": {"url": f"sqlite:///{data_dir}/q.db", "migrate_on_start": True},
            "admission": {"enabled": True},
        }
    )
    app = create_app(settings, extra_plugins=(Bench(),))
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    token = mint_token(JWT_SECRET.encode(), role="citizen", sub=synthetic_iin(1), name="B")
    citizen = {"Authorization": f"Bearer {token}"}
    transport = Transport()

    def requests(method: str, headers: dict[str, str]) -> list[web.Request]:
        return [
            make_mocked_request(method, "/bench/x", headers=headers, app=app, transport=transport)
            for _ in range(per_round)
        ]

    saturated = property(lambda writer: 1.0)
    real_pressure = Writer.pressure
    cases = {
        "served GET, citizen token": ("GET", citizen, 200, False),
        "served GET, anonymous": ("GET", {}, 200, False),
        "POST refused, storage saturated, citizen token": ("POST", citizen, 503, True),
        "GET dropped at deadline, citizen token": (
            "GET",
            {**citizen, "Request-Timeout": "0.000001"},
            503,
            False,
        ),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (method, headers, status, saturate) in cases.items():
            Writer.pressure = saturated if saturate else real_pressure  # type: ignore[method-assign]
            app[admission_keys.ADMISSION].writer_pressure = 1.0 if saturate else 0.0
            batch = requests(method, headers)
            started = time.process_time()
            for request in batch:
                response = await app._handle(request)
                assert response.status == status, (name, response.status)
            results[name].append((time.process_time() - started) / per_round * 1e6)
    Writer.pressure = real_pressure  # type: ignore[method-assign]
    await runner.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.middleware_cost", description=__doc__
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=2000)
    arguments = parser.parse_args()
    results = asyncio.run(measure(arguments.rounds, arguments.per_round))
    tree = core.__file__.rsplit("/core/", 1)[0]
    print(f"tree {tree}: {arguments.rounds} rounds x {arguments.per_round}")
    for name, values in results.items():
        print(
            f"  {name:50s} median {statistics.median(values):6.1f} us"
            f"  (min {min(values):6.1f}, max {max(values):6.1f})"
        )


if __name__ == "__main__":
    main()
