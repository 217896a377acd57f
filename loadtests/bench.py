"""The benchmark: one command per question, a Markdown table on stdout, JSON in bench-results/.

    python -m loadtests.bench signing    # durable signatures/s on one process vs a bare hello
    python -m loadtests.bench hotread    # GET one petition vs a bare hello
    python -m loadtests.bench overload   # open-loop 1x/3x/10x capacity, admission on and off

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
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loadtests.flood import FloodConfig, FloodResult, parse_mix, run_flood_sync
from loadtests.seeding import create_approved_petition, settled_signature_count
from loadtests.servers import (
    BENCH_SECRET_ENV,
    REPO_ROOT,
    ManagedServer,
    bench_workdir,
    cap_cpu,
    hello_server,
    pin_this_process,
    qatysu_server,
    rss_bytes,
)
from loadtests.wrk import WRK_INSTALL_HINT, WrkResult, run_wrk, wrk_available, wrk_lua_script

SERVER_CPU = 0
LOAD_CPU = 1
SIGNING_TARGET = 5000.0
HOTREAD_TARGET_RATIO = 0.5
P99_SLO = 0.250
# A step whose sends were this late at p99 says more about the generator than the server.
GENERATOR_FAILING_LAG = 0.100
RESULTS_DIR = REPO_ROOT / "bench-results"

Out = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# Reporting


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; numbers right-aligned, None shown as '-'."""

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.1f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value).replace("|", "\\|")

    def is_number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    numeric = [
        bool(rows) and all(is_number(row[i]) or row[i] is None for row in rows)
        for i in range(len(headers))
    ]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if right else "---" for right in numeric) + "|",
    ]
    lines.extend("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)
    return "\n".join(lines)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, Any]:
    import aiohttp

    try:
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


def print_preamble(out: Out, facts: dict[str, Any]) -> None:
    command = [Path(sys.executable).name, "-m", "loadtests.bench", *sys.argv[1:]]
    out(f"command: {shlex.join(command)}")
    out(f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    out(
        f"machine: nproc={facts['nproc']}, CPU={facts['cpu_model']}, python={facts['python']},"
        f" aiohttp={facts['aiohttp']}, uvloop={facts['uvloop']}, {facts['platform']}"
    )
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
    from loadtests.flood import mint_citizen_tokens

    path.write_bytes(b"\n".join(mint_citizen_tokens(secret, first, count)) + b"\n")


def format_statuses(statuses: dict[int, int]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in statuses.items()) or "none"


def run_signing(args: argparse.Namespace, out: Out) -> dict[str, Any]:
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


def format_errors(result: WrkResult) -> str:
    return ", ".join(f"{k}: {v}" for k, v in result.errors.items() if v) or "none"


def run_hotread(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    workdir = bench_workdir()
    hello = measure_hello(workdir, args, out)
    secret = BENCH_SECRET_ENV["QATYSU_JWT_SECRET"]
    # wrk speaks from one address, which the per-client limiter would rightly throttle; this
    # run asks how fast the read path is, so only the per-client limiter is switched off.
    extra_env = {"QATYSU_ADMISSION__RATELIMIT_ENABLED": "false"}
    server = qatysu_server(
        cpu=SERVER_CPU,
        workdir=workdir,
        admission=args.admission == "on",
        name="hotread",
        extra_env=extra_env,
    )
    with server:
        out(f"server: QATYSU_ADMISSION__RATELIMIT_ENABLED=false {server.printable}")
        petition_id = create_approved_petition(server.url, secret)
        path = f"/api/v1/petitions/{petition_id}"
        script = workdir / "hotread.lua"
        script.write_text(wrk_lua_script(path=path))
        run = wrk_measure(
            server.url + path,
            script,
            connections=args.connections,
            duration=args.duration,
            warmup=args.warmup,
        )
        out(f"  {run.measured.command}")
    read = run.measured
    ratio = read.success_rate / hello.measured.success_rate if hello.measured.success_rate else 0.0
    out("")
    out(
        markdown_table(
            ["run", "req/s (2xx)", "p50 ms", "p99 ms", "non-2xx", "socket errors"],
            [
                [
                    "hello (bare aiohttp)",
                    hello.measured.success_rate,
                    hello.measured.latency_ms["p50"],
                    hello.measured.latency_ms["p99"],
                    format_statuses(hello.measured.non_2xx),
                    format_errors(hello.measured),
                ],
                [
                    "GET /api/v1/petitions/{id}",
                    read.success_rate,
                    read.latency_ms["p50"],
                    read.latency_ms["p99"],
                    format_statuses(read.non_2xx),
                    format_errors(read),
                ],
            ],
        )
    )
    out("")
    met = "met" if ratio >= HOTREAD_TARGET_RATIO else "NOT met"
    out(
        f"hot read / hello: {ratio:.2f} (target >= {HOTREAD_TARGET_RATIO:.2f}: {met});"
        f" wrk -c{args.connections}, {args.duration:g} s after {args.warmup:g} s warm-up"
    )
    return {
        "hello": hello.measured.summary(),
        "hotread": read.summary(),
        "ratio": ratio,
        "admission": args.admission,
        "extra_env": extra_env,
    }


# ---------------------------------------------------------------------------------------------
# Overload (open loop)


@dataclass(kw_only=True)
class CitizenCounter:
    """Hands out disjoint ranges of synthetic citizens, so every signature is a new one."""

    next_number: int = 0

    def take(self, result: FloodResult) -> None:
        self.next_number += result.citizens_used


@dataclass(kw_only=True)
class RssWatch:
    """Samples the server's RSS every 0.25 s in a thread, for the peak during a flood."""

    pid: int
    peak: int = 0
    _stop: threading.Event | None = None
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssWatch:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        assert self._stop is not None
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, rss_bytes(self.pid) or 0)

    def __exit__(self, *exc_info: object) -> None:
        assert self._stop is not None
        assert self._thread is not None
        self._stop.set()
        self._thread.join(2)


@dataclass(kw_only=True)
class LevelRow:
    mode: str
    level: str
    result: FloodResult
    rss_before: int | None
    rss_after: int | None
    rss_peak: int | None
    capacity: float


def flood_once(
    base: FloodConfig, rate: float, duration: float, citizens: CitizenCounter, seed: int
) -> FloodResult:
    config = replace(
        base, rate=rate, duration=duration, citizen_offset=citizens.next_number, seed=seed
    )
    result = run_flood_sync(config)
    citizens.take(result)
    return result


MAX_STEPS = 25


def step_rates(start: float, factor: float, ceiling: float) -> Iterator[float]:
    rate = start
    for _ in range(MAX_STEPS):
        if rate > ceiling:
            return
        yield round(rate)
        rate *= factor


def measure_capacity(
    base: FloodConfig, args: argparse.Namespace, citizens: CitizenCounter, out: Out
) -> tuple[float, list[dict[str, Any]]]:
    """Step the open-loop rate up; capacity = max goodput of a step whose 2xx p99 <= 250 ms."""
    capacity = 0.0
    misses = 0
    steps: list[dict[str, Any]] = []
    for index, rate in enumerate(step_rates(args.step_start, args.step_factor, args.max_rate)):
        result = flood_once(base, rate, args.step_seconds, citizens, seed=100 + index)
        p99 = result.latency_percentile("2xx", 99)
        within_slo = p99 is not None and p99 <= P99_SLO
        steps.append({"rate": rate, **result.summary()})
        out(
            f"  step {rate:>6}/s: goodput {result.goodput:,.0f}/s, 2xx p99 {ms(p99)} ms,"
            f" 429 {result.outcome_count('429')}, 503 {result.outcome_count('503')},"
            f" timeouts {result.outcome_count('timeout')}, generator lag p99"
            f" {ms(result.lag_percentile(99))} ms"
        )
        if within_slo:
            capacity = max(capacity, result.goodput)
            misses = 0
        else:
            misses += 1
        saturated = result.goodput < 0.8 * rate
        generator_failing = (result.lag_percentile(99) or 0.0) > GENERATOR_FAILING_LAG
        # One short step can miss the SLO on a hiccup; two in a row mean the knee is passed.
        if misses >= 2 or saturated or generator_failing:
            break
        time.sleep(args.pause)
    return capacity, steps


def flood_level(
    server: ManagedServer,
    base: FloodConfig,
    rate: float,
    duration: float,
    citizens: CitizenCounter,
    seed: int,
) -> tuple[FloodResult, int | None, int | None, int]:
    before = rss_bytes(server.pid)
    with RssWatch(pid=server.pid) as watch:
        result = flood_once(base, rate, duration, citizens, seed)
    after = rss_bytes(server.pid)
    return result, before, after, max(watch.peak, after or 0, before or 0)


def mib(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


def overload_mode(
    *,
    admission: bool,
    args: argparse.Namespace,
    workdir: Path,
    citizens: CitizenCounter,
    reference_capacity: float | None,
    cpu_fraction: float | None,
    out: Out,
) -> dict[str, Any]:
    """One server, admission on or off: capacity, then 1x/3x/10x floods, then recovery."""
    mode = "on" if admission else "off"
    server = qatysu_server(
        cpu=SERVER_CPU, workdir=workdir, admission=admission, name=f"overload-{mode}"
    )
    record: dict[str, Any] = {"admission": mode}
    with server:
        out(f"\n## admission {mode}\nserver: {server.printable}")
        secret = BENCH_SECRET_ENV["QATYSU_JWT_SECRET"]
        petition_id = create_approved_petition(server.url, secret)
        base = FloodConfig(
            url=server.url,
            rate=1.0,
            duration=1.0,
            mix=parse_mix(args.mix, petition_id),
            give_up=args.give_up,
            clients=args.clients,
            max_connections=args.max_connections,
            jwt_secret=secret,
        )
        cap = None
        measured: tuple[float, list[dict[str, Any]]] | None = None
        if cpu_fraction is None and reference_capacity is None:
            out("capacity, uncapped:")
            measured = measure_capacity(base, args, citizens, out)
            record["uncapped_capacity"] = measured[0]
            cpu_fraction = cpu_fraction_needed(measured[0], args)
            if cpu_fraction is not None:
                measured = None  # to be measured again under the cap
        if cpu_fraction is not None:
            cap = cap_cpu(server.pid, cpu_fraction, f"qatysu-bench-{os.getpid()}-{mode}")
            out(
                f"CPU cap ({cpu_fraction:.2f} of a core, so that 10x fits the generator's"
                f" --max-rate {args.max_rate:g}/s): {cap.description}"
            )
            record["cpu_cap"] = cap.description
        try:
            if measured is None:
                out("capacity" + (" under the cap:" if cap else ":"))
                measured = measure_capacity(base, args, citizens, out)
            capacity, steps = measured
            record["capacity"] = capacity
            record["capacity_steps"] = steps
            reference = reference_capacity or capacity
            record["reference_capacity"] = reference
            out(f"measured capacity {capacity:,.0f}/s; floods are multiples of {reference:,.0f}/s")
            if reference <= 0:
                out("no step met the 250 ms p99: no capacity to multiply, floods skipped")
                return record | {"cpu_fraction": cpu_fraction, "rows": []}
            rows = []
            for index, (label, factor, seconds) in enumerate(
                (
                    ("1x", 1.0, args.flood_seconds),
                    ("3x", 3.0, args.flood_seconds),
                    ("10x", 10.0, args.flood_seconds),
                    ("recovery 0.5x", 0.5, args.recovery_seconds),
                )
            ):
                # Recovery follows the 10x flood at once: how fast does normal service return?
                if label != "recovery 0.5x":
                    time.sleep(args.pause)
                result, before, after, peak = flood_level(
                    server, base, reference * factor, seconds, citizens, seed=10 + index
                )
                rows.append(
                    LevelRow(
                        mode=mode,
                        level=label,
                        result=result,
                        rss_before=before,
                        rss_after=after,
                        rss_peak=peak,
                        capacity=reference,
                    )
                )
                out(
                    f"  {label}: offered {reference * factor:,.0f}/s, goodput"
                    f" {result.goodput:,.0f}/s, 2xx p99"
                    f" {ms(result.latency_percentile('2xx', 99))} ms"
                )
            record["rows"] = rows
            record["exit_code"] = server.stop()
            record["server_log_tail"] = server.log_tail(10)
        finally:
            server.stop()
            if cap is not None:
                cap.remove()
    record["cpu_fraction"] = cpu_fraction
    return record


def cpu_fraction_needed(uncapped_capacity: float, args: argparse.Namespace) -> float | None:
    """The share of a core that brings 10x capacity within what one generator can offer."""
    if uncapped_capacity <= 0 or 10 * uncapped_capacity <= args.max_rate:
        return None
    fraction = args.max_rate / (10 * uncapped_capacity)
    return float(max(0.05, math.floor(fraction * 20) / 20))


OVERLOAD_HEADERS = [
    "admission",
    "load",
    "offered/s",
    "sent/s",
    "gen lag p99 ms",
    "goodput/s",
    "% of cap",
    "sign 2xx/s",
    "2xx p50 ms",
    "2xx p99 ms",
    "429 n",
    "429 p50/p99 ms",
    "503 n",
    "503 p50/p99 ms",
    "timeouts",
    "other 5xx",
    "conn err/none",
    "RSS MiB before/peak/after",
]


def overload_row(row: LevelRow) -> list[object]:
    r = row.result

    def pair(label: str) -> str:
        p50, p99 = ms(r.latency_percentile(label, 50)), ms(r.latency_percentile(label, 99))
        return "-" if p50 is None or p99 is None else f"{p50}/{p99}"

    sign_ok = r.outcome_count("2xx", "sign") / r.duration
    connection_trouble = (
        r.outcome_count("connect_error") + r.outcome_count("reset"),
        r.outcome_count("no_connection"),
    )
    return [
        row.mode,
        row.level,
        round(r.offered_rate),
        round(r.achieved_send_rate),
        ms(r.lag_percentile(99)),
        round(r.goodput),
        round(100 * r.goodput / row.capacity, 1) if row.capacity else None,
        round(sign_ok),
        ms(r.latency_percentile("2xx", 50)),
        ms(r.latency_percentile("2xx", 99)),
        r.outcome_count("429"),
        pair("429"),
        r.outcome_count("503"),
        pair("503"),
        r.outcome_count("timeout"),
        r.outcome_count("other_5xx"),
        f"{connection_trouble[0]}/{connection_trouble[1]}",
        f"{mib(row.rss_before)}/{mib(row.rss_peak)}/{mib(row.rss_after)}",
    ]


def run_overload(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    workdir = bench_workdir()
    if pin_this_process(LOAD_CPU):
        out(f"generator: this process, pinned to core {LOAD_CPU}")
    else:
        out("generator: this process, NOT pinned (fewer than two cores or no affinity)")
    out(
        f"mix {args.mix}; Poisson arrivals; give-up {args.give_up:g} s; {args.clients} client"
        f" addresses (127.x.y.z), at most {args.max_connections} connections"
    )
    citizens = CitizenCounter()
    on = overload_mode(
        admission=True,
        args=args,
        workdir=workdir,
        citizens=citizens,
        reference_capacity=None,
        cpu_fraction=args.cpu_cap,
        out=out,
    )
    off = overload_mode(
        admission=False,
        args=args,
        workdir=workdir,
        citizens=citizens,
        reference_capacity=on.get("reference_capacity"),
        cpu_fraction=on.get("cpu_fraction"),
        out=out,
    )
    rows: list[LevelRow] = [*on.get("rows", []), *off.get("rows", [])]
    out("")
    out(
        f"capacity (admission on{', CPU-capped' if on.get('cpu_cap') else ''}):"
        f" {on.get('capacity', 0):,.0f}/s; admission off measured"
        f" {off.get('capacity', 0):,.0f}/s;"
        f" % of cap is against {on.get('reference_capacity', 0):,.0f}/s"
    )
    out(f"CPU cap: {on.get('cpu_cap', 'none needed (10x fits the generator)')}")
    out("")
    out(markdown_table(OVERLOAD_HEADERS, [overload_row(row) for row in rows]))
    behind = [f"{row.mode}/{row.level}" for row in rows if not row.result.kept_schedule]
    if behind:
        out(f"\nGENERATOR FELL BEHIND SCHEDULE (lag p99 > 20 ms) in: {', '.join(behind)}")

    def serialise(record: dict[str, Any]) -> dict[str, Any]:
        return {
            **record,
            "rows": [
                {
                    "level": row.level,
                    "rss_before": row.rss_before,
                    "rss_after": row.rss_after,
                    "rss_peak": row.rss_peak,
                    **row.result.summary(),
                }
                for row in record.get("rows", [])
            ],
        }

    return {"admission_on": serialise(on), "admission_off": serialise(off)}


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
        sub.add_argument("--duration", type=float, default=10.0, help="measured seconds")
        sub.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds")
        sub.add_argument(
            "--connections",
            type=int,
            default=connections,
            help="wrk connections (the same for hello and the server)",
        )
        sub.add_argument("--admission", choices=("on", "off"), default="on")
    overload = modes.add_parser("overload")
    overload.add_argument("--mix", default="read=90,sign=10")
    overload.add_argument("--give-up", type=float, default=2.0)
    overload.add_argument("--clients", type=int, default=2000)
    overload.add_argument("--max-connections", type=int, default=4000)
    overload.add_argument("--step-start", type=float, default=250.0)
    overload.add_argument("--step-factor", type=float, default=1.5)
    overload.add_argument("--step-seconds", type=float, default=3.0)
    overload.add_argument("--flood-seconds", type=float, default=20.0)
    overload.add_argument("--recovery-seconds", type=float, default=5.0)
    overload.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    overload.add_argument(
        "--max-rate",
        type=float,
        default=8000.0,
        help="the most one generator process offers on schedule; the server"
        " is CPU-capped so that 10x capacity fits under it",
    )
    overload.add_argument(
        "--cpu-cap",
        type=float,
        help="force this share of a core for the server (skips the uncapped step-up)",
    )
    return parser


RUNNERS: dict[str, Callable[[argparse.Namespace, Out], dict[str, Any]]] = {
    "signing": run_signing,
    "hotread": run_hotread,
    "overload": run_overload,
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

    print_preamble(flushed, facts)
    payload = RUNNERS[args.mode](args, flushed)
    path = write_results(
        args.mode, {"command": sys.argv, "machine": facts, "arguments": vars(args), **payload}
    )
    flushed(f"\nresults: {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
