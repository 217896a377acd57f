"""Server CPU per hot read, for one or more source trees in interleaved rounds.

The hot-read benchmark (``python -m loadtests.bench hotread``) reports throughput as a ratio to
a bare hello, which on a shared machine moves with the neighbours' load. CPU time per answer
moves far less, so to compare two trees (this one and main's, from a second worktree) this
starts each tree's own ``qatysu serve`` in turn, pinned to the server core, floods it with the
benchmark's load (wrk, 64 connections, one of 10,000 ``X-Forwarded-For`` addresses per request,
the per-client rate limiter on), and divides the server's CPU seconds over the measured window
by the 2xx answers. ``--redis-url`` points every server at a Redis (each run under its own key
prefix), so that the rate budget is the shared one; the Redis calls of each run are counted
with ``INFO commandstats``.

    .venv/bin/python -m loadtests.hotread_cpu --tree . --tree ../main-tree \\
        --redis-url redis://127.0.0.1:6391/0 [--rounds 3] [--duration 5] [--warmup 2]
"""

from __future__ import annotations

import argparse
import statistics
import uuid
from pathlib import Path

from loadtests.closedloop import HOTREAD_CLIENTS
from loadtests.instances import redis_command_calls
from loadtests.options import add_duration, add_redis_url, add_rounds, add_trees, add_warmup
from loadtests.seeding import create_approved_petition
from loadtests.servers import (
    BENCH_SECRET_ENV,
    LOAD_CPU,
    SERVER_CPU,
    TRUST_LOOPBACK_ENV,
    ManagedServer,
    bench_workdir,
    cpu_seconds,
    qatysu_server,
)
from loadtests.wrk import run_wrk, wrk_lua_script


def tree_server(tree: Path, workdir: Path, name: str, redis_url: str | None) -> ManagedServer:
    env = dict(TRUST_LOOPBACK_ENV)
    if redis_url is not None:
        env |= {"QATYSU_REDIS__URL": redis_url, "QATYSU_REDIS__KEY_PREFIX": f"{name}:"}
    return qatysu_server(
        cpu=SERVER_CPU,
        workdir=workdir,
        admission=True,
        name=name,
        extra_env=env,
        venv_bin=tree / ".venv" / "bin",
    )


def redis_script_calls(redis_url: str) -> int:
    return sum(v for k, v in redis_command_calls(redis_url).items() if k.startswith("eval"))


def measure(tree: Path, workdir: Path, name: str, args: argparse.Namespace) -> dict[str, float]:
    with tree_server(tree, workdir, name, args.redis_url) as server:
        petition_id = create_approved_petition(server.url, BENCH_SECRET_ENV["QATYSU_JWT_SECRET"])
        path = f"/api/v1/petitions/{petition_id}"
        script = workdir / f"{name}.lua"
        script.write_text(wrk_lua_script(path=path, forwarded_clients=HOTREAD_CLIENTS))
        url = server.url + path
        run_wrk(url, script, connections=64, duration=args.warmup, cpu=LOAD_CPU)
        calls = redis_script_calls(args.redis_url) if args.redis_url else 0
        cpu = cpu_seconds([server.pid])
        result = run_wrk(url, script, connections=64, duration=args.duration, cpu=LOAD_CPU)
        cpu = cpu_seconds([server.pid]) - cpu
        calls = (redis_script_calls(args.redis_url) if args.redis_url else 0) - calls
    answered = result.success_rate * result.duration
    return {
        "reads_per_s": result.success_rate,
        "cpu_us_per_read": cpu / answered * 1e6 if answered else float("nan"),
        "scripts_per_read": calls / answered if answered else float("nan"),
        "non_2xx": float(sum(result.non_2xx.values())),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.hotread_cpu", description=__doc__)
    add_trees(parser)
    add_redis_url(parser, help="a Redis the servers share their rate budget through")
    add_rounds(parser, 3)
    add_duration(parser, 5.0)
    add_warmup(parser)
    args = parser.parse_args(argv)
    workdir = bench_workdir()
    figures: dict[Path, list[dict[str, float]]] = {tree: [] for tree in args.tree}
    for round_number in range(1, args.rounds + 1):
        for tree in args.tree:
            name = f"r{round_number}-{uuid.uuid4().hex[:8]}"
            run = measure(tree.resolve(), workdir, name, args)
            figures[tree].append(run)
            print(
                f"round {round_number} {tree}: {run['reads_per_s']:,.0f} reads/s,"
                f" {run['cpu_us_per_read']:.1f} µs CPU per read,"
                f" {run['scripts_per_read']:.3f} Redis scripts per read,"
                f" non-2xx {run['non_2xx']:.0f}",
                flush=True,
            )
    for tree, runs in figures.items():
        costs = [run["cpu_us_per_read"] for run in runs]
        print(
            f"{tree}: CPU per read median {statistics.median(costs):.1f} µs"
            f" ({min(costs):.1f}-{max(costs):.1f}) over {len(runs)} rounds"
        )


if __name__ == "__main__":
    main()
