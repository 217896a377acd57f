"""The flood generator's own ceiling: how fast one Python process offers load on schedule.

The generator is one event loop on one core. Against a bare aiohttp hello (uncapped, on the
server's core), it steps the rate up with the overload benchmark's connection model (new
connections, a few requests each) and reports, per step, the rate really offered and the lag
between intended and actual send times. The ceiling is the highest step whose lag p99 stayed
within the budget: an overload row above it is generator-bound, and says so.
"""

from __future__ import annotations

import argparse
from typing import Any

from loadtests.flood import LAG_P99_BUDGET, FloodConfig, parse_mix, run_flood_processes
from loadtests.options import add_clients, add_generator_arguments, add_requests_per_connection
from loadtests.report import Out, markdown_table
from loadtests.servers import SERVER_CPU, bench_workdir, hello_server


def run_ceiling(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    workdir = bench_workdir()
    steps: list[dict[str, Any]] = []
    ceiling = 0.0
    with hello_server(cpu=SERVER_CPU, workdir=workdir) as server:
        out(
            f"target: {server.printable}; {args.generator_processes} generator process(es);"
            f" {args.clients} client addresses, {args.requests_per_connection or 'unlimited'}"
            f" requests per connection; lag budget p99 {LAG_P99_BUDGET * 1000:g} ms"
        )
        for rate in args.rates:
            config = FloodConfig(
                url=server.url,
                rate=rate,
                duration=args.seconds,
                mix=parse_mix("hello=1"),
                clients=args.clients,
                requests_per_connection=args.requests_per_connection,
            )
            result = run_flood_processes(config, args.generator_processes, args.generator_cpus)
            lag = result.lag_percentile(99)
            steps.append(
                {
                    "rate": rate,
                    "really_offered": result.really_offered_rate,
                    "lag_p99_ms": None if lag is None else lag * 1000,
                    "kept_schedule": result.kept_schedule,
                    "on_new_connection": result.on_new_connection,
                    "outcomes": {k: v for k, v in result.outcome_totals.items() if v},
                }
            )
            if result.kept_schedule:
                ceiling = max(ceiling, rate)
    out(
        markdown_table(
            ["intended/s", "offered/s", "lag p99 ms", "on schedule", "on new conn", "outcomes"],
            [
                [
                    round(step["rate"]),
                    round(step["really_offered"]),
                    None if step["lag_p99_ms"] is None else round(step["lag_p99_ms"], 1),
                    "yes" if step["kept_schedule"] else "NO",
                    step["on_new_connection"],
                    ", ".join(f"{k}={v}" for k, v in step["outcomes"].items()),
                ]
                for step in steps
            ],
        )
    )
    out(f"generator ceiling on schedule: {ceiling:,.0f}/s")
    return {"ceiling": ceiling, "steps": steps}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rates",
        type=lambda text: [float(part) for part in text.split(",")],
        default=[500.0, 1000.0, 2000.0, 3000.0, 4000.0, 6000.0],
    )
    parser.add_argument("--seconds", type=float, default=4.0)
    add_clients(parser)
    add_requests_per_connection(parser)
    add_generator_arguments(parser)
