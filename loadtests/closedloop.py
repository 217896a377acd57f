"""Closed-loop measurements with wrk, as the signing and hot-read benchmarks make them.

A bare hello is measured first as the baseline; every run may have a warm-up; signing spends
tokens minted before the clock starts; and the count read back afterwards is judged against
what wrk saw. Shared by ``bench signing``/``hotread`` (one process), ``signing_scale`` (several
instances) and ``hotread_cpu``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from loadtests.report import Out
from loadtests.seeding import mint_citizen_tokens
from loadtests.servers import LOAD_CPU, SERVER_CPU, hello_server
from loadtests.wrk import WrkResult, run_wrk, wrk_lua_script

# The hot read comes from this many citizens behind a trusted proxy, so the per-client rate
# limiter stays on and is exercised.
HOTREAD_CLIENTS = 10_000


@dataclass(frozen=True, kw_only=True)
class WrkRun:
    warmup: WrkResult | None
    measured: WrkResult


def wrk_measure(
    url: str,
    script: Path,
    *,
    connections: int,
    duration: float,
    warmup: float,
    warmup_script: Path | None = None,
) -> WrkRun:
    warm = None
    if warmup > 0:
        warm = run_wrk(
            url, warmup_script or script, connections=connections, duration=warmup, cpu=LOAD_CPU
        )
    measured = run_wrk(url, script, connections=connections, duration=duration, cpu=LOAD_CPU)
    return WrkRun(warmup=warm, measured=measured)


def measure_hello(workdir: Path, args: argparse.Namespace, out: Out) -> WrkRun:
    script = workdir / "hello.lua"
    script.write_text(wrk_lua_script(path="/hello"))
    with hello_server(cpu=SERVER_CPU, workdir=workdir) as server:
        out(f"baseline: {server.printable}")
        run = wrk_measure(
            server.url + "/hello",
            script,
            connections=args.connections,
            duration=args.duration,
            warmup=args.warmup,
        )
    out(f"  {run.measured.command}")
    return run


def write_tokens(path: Path, secret: str, first: int, count: int) -> None:
    path.write_bytes(b"\n".join(mint_citizen_tokens(secret, first, count)) + b"\n")


def format_statuses(statuses: dict[int, int]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in statuses.items()) or "none"


def format_errors(result: WrkResult) -> str:
    return ", ".join(f"{k}: {v}" for k, v in result.errors.items() if v) or "none"


def signature_verdict(created: int, counted: int, sent: int, connections: int) -> str:
    """Judge the count read back against what the client saw.

    wrk stops each run with up to one request per connection in flight: the server may commit
    those signatures, but their 201s are never read. So the count can exceed the 201s received
    by at most that many; it must never be below them (an acknowledged signature lost), nor above
    the requests sent (a signature nobody asked for).
    """
    if counted == created:
        return "EQUAL"
    if counted < created:
        return f"LOST: {created - counted:,} acknowledged signatures are not counted"
    if counted > sent:
        return f"PHANTOM: {counted - sent:,} more signatures than requests sent"
    return (
        f"count exceeds 201s received by {counted - created:,}: requests in flight when wrk"
        f" stopped (at most {connections} per run), committed but never read; none lost"
    )
