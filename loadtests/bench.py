"""The benchmark: one command per question, a Markdown table on stdout, JSON in bench-results/.

    python -m loadtests.bench signing    # durable signatures/s on one process vs a bare hello
    python -m loadtests.bench signing --database-url postgresql://postgres@127.0.0.1/postgres \
        --instances 1,2                  # ... on PostgreSQL, one then two instances
    python -m loadtests.bench hotread    # GET one petition vs a bare hello
    python -m loadtests.bench overload   # four modes, open loop, at 1x/3x/10x capacity
    python -m loadtests.bench costs      # CPU per request served or refused at each layer
    python -m loadtests.bench generator  # the flood generator's own ceiling
    python -m loadtests.bench watchers --watchers 10000  # live streams vs polling, 2 instances

Every figure printed is measured in this run; nothing is assumed or carried over. The server runs
pinned to core 0 and the load tool to core 1 (when there are two cores and taskset).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from loadtests.ceiling import add_arguments as ceiling_arguments
from loadtests.ceiling import run_ceiling
from loadtests.closedloop import (
    HOTREAD_CLIENTS,
    WrkRun,
    format_errors,
    format_statuses,
    measure_hello,
    signature_verdict,
    write_tokens,
    wrk_measure,
)
from loadtests.costs import add_arguments as cost_arguments
from loadtests.costs import run_costs
from loadtests.options import (
    add_cpu_cap,
    add_duration,
    add_instance_counts,
    add_mix,
    add_repeat,
    add_requests_per_connection,
    add_warmup,
)
from loadtests.overload import add_arguments as overload_arguments
from loadtests.overload import run_overload
from loadtests.report import Out, markdown_table
from loadtests.seeding import create_approved_petition, settled_signature_count
from loadtests.servers import (
    BENCH_SECRET_ENV,
    LOAD_CPU,
    REPO_ROOT,
    SERVER_CPU,
    TRUST_LOOPBACK_ENV,
    bench_workdir,
    hello_server,
    pin_this_process,
    qatysu_server,
)
from loadtests.signing_scale import run_signing_scaled, scaled_topology
from loadtests.watchers import TOPOLOGY as WATCHERS_TOPOLOGY
from loadtests.watchers import add_arguments as watcher_arguments
from loadtests.watchers import run_watchers
from loadtests.wrk import WRK_INSTALL_HINT, WrkResult, wrk_available, wrk_lua_script

SIGNING_TARGET = 5000.0
HOTREAD_TARGET_RATIO = 1.0
RESULTS_DIR = REPO_ROOT / "bench-results"


# ---------------------------------------------------------------------------------------------
# Reporting


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, Any]:
    # aiohttp takes 0.3 s to import, and every generator process the open-loop modes spawn
    # re-imports this module (multiprocessing's spawn runs ``-m loadtests.bench`` as
    # __mp_main__): only the parent, which reports, pays for it.
    import aiohttp

    try:  # uvloop is a dependency everywhere but Windows
        import uvloop

        uvloop_version: str | None = getattr(uvloop, "__version__", None)
    except ImportError:  # pragma: no cover
        uvloop_version = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "aiohttp": aiohttp.__version__,
        "uvloop": uvloop_version,
    }


def print_preamble(out: Out, facts: dict[str, Any], *, topology: str | None = None) -> None:
    command = [Path(sys.executable).name, "-m", "loadtests.bench", *sys.argv[1:]]
    out(f"command: {shlex.join(command)}")
    out(f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    out(
        f"machine: nproc={facts['nproc']}, CPU={facts['cpu_model']}, python={facts['python']},"
        f" aiohttp={facts['aiohttp']}, uvloop={facts['uvloop']}, {facts['platform']}"
    )
    if topology is not None:
        out(topology)
        out("")
        return
    out(
        "server: access log off (QATYSU_SERVER__ACCESS_LOG=false), SQLite, one process;"
        " the government threshold raised to 10^9 so the petition keeps accepting signatures"
    )
    out(f"pinning: server on core {SERVER_CPU}, load on core {LOAD_CPU} (taskset)")
    out("")


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


# ---------------------------------------------------------------------------------------------
# Closed-loop comparisons with wrk (signing, hotread)


def run_signing(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    if args.database_url or args.instances != [1]:
        return run_signing_scaled(args, out)
    workdir = bench_workdir()
    hello = measure_hello(workdir, args, out)
    # Signing cannot outrun a bare hello on the same core, so hello's rate bounds the tokens.
    warmup_count = math.ceil(hello.measured.success_rate * args.warmup * 1.2) + 100
    measured_count = math.ceil(hello.measured.success_rate * (args.duration + 1) * 1.2) + 100
    secret = BENCH_SECRET_ENV["QATYSU_JWT_SECRET"]
    started = time.perf_counter()
    warmup_tokens, tokens = workdir / "warmup-tokens.txt", workdir / "tokens.txt"
    write_tokens(warmup_tokens, secret, 0, warmup_count)
    write_tokens(tokens, secret, warmup_count, measured_count)
    out(
        f"minted {warmup_count + measured_count} citizen tokens in"
        f" {time.perf_counter() - started:.1f} s (before measuring)"
    )

    server = qatysu_server(
        cpu=SERVER_CPU, workdir=workdir, admission=args.admission == "on", name="signing"
    )
    with server:
        out(f"server: {server.printable}")
        petition_id = create_approved_petition(server.url, secret)
        path = f"/api/v1/petitions/{petition_id}/signatures"
        warmup_script, script = workdir / "sign-warmup.lua", workdir / "sign.lua"
        warmup_script.write_text(
            wrk_lua_script(method="POST", path=path, tokens_file=warmup_tokens)
        )
        script.write_text(wrk_lua_script(method="POST", path=path, tokens_file=tokens))
        run = wrk_measure(
            server.url + path,
            script,
            connections=args.connections,
            duration=args.duration,
            warmup=args.warmup,
            warmup_script=warmup_script,
        )
        out(f"  {run.measured.command}")
        created = run.measured.status_count(201) + (
            run.warmup.status_count(201) if run.warmup else 0
        )
        counted = settled_signature_count(server.url, petition_id)
    return report_signing(hello.measured, run, created, counted, args, out)


def report_signing(
    hello: WrkResult,
    run: WrkRun,
    created: int,
    counted: int,
    args: argparse.Namespace,
    out: Out,
) -> dict[str, Any]:
    signing = run.measured
    signatures_per_s = signing.rate_of(201)
    ratio = signatures_per_s / hello.success_rate if hello.success_rate else 0.0
    out("")
    out(
        markdown_table(
            ["run", "req/s (2xx)", "201/s", "p50 ms", "p99 ms", "non-2xx", "socket errors"],
            [
                [
                    "hello (bare aiohttp)",
                    hello.success_rate,
                    None,
                    hello.latency_ms["p50"],
                    hello.latency_ms["p99"],
                    format_statuses(hello.non_2xx),
                    format_errors(hello),
                ],
                [
                    "sign (new citizen each)",
                    signing.success_rate,
                    signatures_per_s,
                    signing.latency_ms["p50"],
                    signing.latency_ms["p99"],
                    format_statuses(signing.non_2xx),
                    format_errors(signing),
                ],
            ],
        )
    )
    out("")
    met = "met" if signatures_per_s >= SIGNING_TARGET else "NOT met"
    out(
        f"durable signatures/s (201 only): {signatures_per_s:,.0f}"
        f"  (target >= {SIGNING_TARGET:,.0f}: {met})"
    )
    out(f"hello req/s: {hello.success_rate:,.0f}; ratio signing/hello: {ratio:.2f}")
    out(
        f"wrk -c{args.connections}, {args.duration:g} s measured after {args.warmup:g} s warm-up;"
        f" latency percentiles are wrk's, over all answers"
    )
    if signing.tokens_exhausted:
        out(f"WARNING: tokens ran out; {signing.tokens_exhausted} requests repeated a signature")
    sent = signing.tokens_used + (run.warmup.tokens_used if run.warmup else 0)
    out(
        f"verification: 201s received (warm-up + measured) = {created:,};"
        f" signature_count read back = {counted:,}; signing requests sent = {sent:,}"
    )
    out(f"  -> {signature_verdict(created, counted, sent, args.connections)}")
    payload = {
        "hello": hello.summary(),
        "signing_warmup": run.warmup.summary() if run.warmup else None,
        "signing": signing.summary(),
        "signatures_per_s": signatures_per_s,
        "ratio_to_hello": ratio,
        "created_201": created,
        "signature_count": counted,
        "admission": args.admission,
    }
    return payload


def run_hotread(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    """Hello and the hot read, interleaved ``--repeat`` times, every request from one of many
    citizens behind a trusted proxy, so the per-client rate limiter stays on and is exercised."""
    workdir = bench_workdir()
    secret = BENCH_SECRET_ENV["QATYSU_JWT_SECRET"]
    extra_env = dict(TRUST_LOOPBACK_ENV)
    hello = hello_server(cpu=SERVER_CPU, workdir=workdir)
    server = qatysu_server(
        cpu=SERVER_CPU,
        workdir=workdir,
        admission=args.admission == "on",
        name="hotread",
        extra_env=extra_env,
    )
    rows: list[list[object]] = []
    ratios: list[float] = []
    runs: list[dict[str, Any]] = []
    with hello, server:
        out(f"baseline: {hello.printable}")
        out(f"server: QATYSU_SERVER__TRUSTED_PROXIES='[\"127.0.0.1/32\"]' {server.printable}")
        petition_id = create_approved_petition(server.url, secret)
        path = f"/api/v1/petitions/{petition_id}"
        scripts = {}
        for name, target in (("hello", "/hello"), ("read", path)):
            scripts[name] = workdir / f"{name}.lua"
            scripts[name].write_text(wrk_lua_script(path=target, forwarded_clients=HOTREAD_CLIENTS))
        for repetition in range(1, args.repeat + 1):
            measured = {}
            for name, url in (("hello", hello.url + "/hello"), ("read", server.url + path)):
                run = wrk_measure(
                    url,
                    scripts[name],
                    connections=args.connections,
                    duration=args.duration,
                    warmup=args.warmup,
                ).measured
                measured[name] = run
                rows.append(
                    [
                        repetition,
                        "hello (bare aiohttp)" if name == "hello" else "GET /api/v1/petitions/{id}",
                        run.success_rate,
                        run.latency_ms["p50"],
                        run.latency_ms["p99"],
                        format_statuses(run.non_2xx),
                        format_errors(run),
                    ]
                )
            out(f"  {measured['read'].command}")
            ratio = (
                measured["read"].success_rate / measured["hello"].success_rate
                if measured["hello"].success_rate
                else 0.0
            )
            ratios.append(ratio)
            runs.append({name: run.summary() for name, run in measured.items()} | {"ratio": ratio})
    out("")
    out(
        markdown_table(
            ["rep", "run", "req/s (2xx)", "p50 ms", "p99 ms", "non-2xx", "socket errors"], rows
        )
    )
    out("")
    median = statistics.median(ratios)
    met = "met" if median >= HOTREAD_TARGET_RATIO else "NOT met"
    out(
        f"hot read / hello, per repetition: {', '.join(f'{r:.2f}' for r in ratios)};"
        f" median {median:.2f}, spread {min(ratios):.2f}-{max(ratios):.2f}"
        f" (target >= {HOTREAD_TARGET_RATIO:.2f}: {met})"
    )
    out(
        f"wrk -c{args.connections}, {args.duration:g} s after {args.warmup:g} s warm-up, each"
        f" request from one of {HOTREAD_CLIENTS:,} X-Forwarded-For addresses; rate limiter on"
    )
    return {
        "runs": runs,
        "ratios": ratios,
        "median_ratio": median,
        "admission": args.admission,
        "extra_env": extra_env,
    }


# ---------------------------------------------------------------------------------------------
# The command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    for name, connections in (("signing", 256), ("hotread", 64)):
        sub = modes.add_parser(name)
        add_duration(sub, 10.0)
        add_warmup(sub)
        sub.add_argument(
            "--connections",
            type=int,
            default=connections,
            help="wrk connections (the same for hello and the server)",
        )
        sub.add_argument("--admission", choices=("on", "off"), default="on")
        if name == "hotread":
            add_repeat(sub, 3, "interleaved hello/read repetitions")
        if name == "signing":
            sub.add_argument(
                "--database-url",
                help="a PostgreSQL server (postgresql://user@host/db): the run creates a fresh"
                " database there and drops it afterwards (default: SQLite)",
            )
            add_instance_counts(sub)
    overload = modes.add_parser(
        "overload", help="four modes, open loop, at multiples of mode 2's capacity"
    )
    overload_arguments(overload)
    cost_arguments(overload)
    costs = modes.add_parser("costs", help="CPU per request served or refused at each layer")
    add_mix(costs)
    add_requests_per_connection(costs)
    add_cpu_cap(costs)
    cost_arguments(costs)
    generator = modes.add_parser(
        "generator", help="the flood generator's own ceiling against a bare hello"
    )
    ceiling_arguments(generator)
    watchers = modes.add_parser(
        "watchers", help="N live-count streams on two instances vs the same watchers polling"
    )
    watcher_arguments(watchers)
    return parser


OPEN_LOOP = frozenset({"overload", "costs", "generator", "watchers"})
RUNNERS: dict[str, Callable[[argparse.Namespace, Out], dict[str, Any]]] = {
    "signing": run_signing,
    "hotread": run_hotread,
    "overload": run_overload,
    "costs": run_costs,
    "generator": run_ceiling,
    "watchers": run_watchers,
}


def main(argv: list[str] | None = None, out: Out = print) -> int:
    args = build_parser().parse_args(argv)
    if args.mode in {"signing", "hotread"} and not wrk_available():
        out(WRK_INSTALL_HINT)
        return 2
    facts = machine_facts()

    def flushed(line: str) -> None:
        out(line)
        sys.stdout.flush()

    topology = WATCHERS_TOPOLOGY if args.mode == "watchers" else scaled_topology(args)
    print_preamble(flushed, facts, topology=topology)
    if args.mode in OPEN_LOOP and not pin_this_process(LOAD_CPU):
        flushed("generator: NOT pinned (fewer than two cores or no affinity)")
    payload = RUNNERS[args.mode](args, flushed)
    path = write_results(
        args.mode, {"command": sys.argv, "machine": facts, "arguments": vars(args), **payload}
    )
    flushed(f"\nresults: {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
