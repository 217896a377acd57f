"""The overload benchmark: four modes, the same offered rates, the same CPU budget.

1. direct, ``--admission off``: the naive app;
2. direct, admission on: Qatysu alone, as ``make run`` serves it;
3. HAProxy -> ``--admission off``: what an experienced SRE deploys instead;
4. HAProxy -> admission on: the recommended deployment.

Capacity is mode 2's: the highest open-loop rate at which at least 99% of the requests due get
a 2xx within the SLO, found by step search. Every mode is then flooded at the same multiples of
it, in interleaved repetitions (2, 1, 4, 3, then again), each on freshly started processes, and
the report gives each row and the median and spread over repetitions.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.capacity import CAPACITY_GOOD_SHARE, CapacitySearch, find_capacity, spread
from loadtests.costs import measure_costs
from loadtests.flood import LAG_P99_BUDGET, FloodConfig, parse_mix
from loadtests.limits import limit_lines, physical_limit
from loadtests.options import (
    add_cpu_cap,
    add_crowd_arguments,
    add_generator_arguments,
    comma_separated,
)
from loadtests.report import Out, markdown_table, ms
from loadtests.servers import ProxySettings, bench_workdir, haproxy_available, server_code
from loadtests.stacks import (
    INTERLEAVED,
    MODES,
    CitizenCounter,
    Stack,
    StepRecord,
    flood_config,
    measure_step,
    running_stack,
)

RECOVERY = "recovery"


def mib(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


def pair(p50: float | None, p99: float | None) -> str:
    return "-" if p50 is None or p99 is None else f"{ms(p50)}/{ms(p99)}"


def step_passes(record: StepRecord) -> bool:
    return record.result.good_share() >= CAPACITY_GOOD_SHARE


def flags(record: StepRecord) -> str:
    """What makes a row less than it seems: the generator, not the server, set its load."""
    result = record.result
    notes = []
    if result.pool_bound:
        notes.append("POOL BOUND")
    if not result.kept_schedule:
        notes.append("GENERATOR-BOUND")
    return ", ".join(notes)


ROW_HEADERS = [
    "mode",
    "rep",
    "load",
    "intended/s",
    "offered/s",
    "not sent",
    "on new conn (%)",
    "gen lag p99 ms",
    "goodput/s",
    "% of cap",
    "sign good/s",
    "2xx n",
    "2xx p50/p99 ms",
    "429 n",
    "503 n",
    "rej p50/p99 ms",
    "no Retry-After",
    "unanswered",
    "other 5xx",
    "conn err/reset",
    "CPU ms/req",
    "RSS MiB before/peak/after",
    "accept queue peak/mean",
    "ListenOverflows",
    "bound/s",
    "min unanswered %",
    "flags",
]


@dataclass(frozen=True, kw_only=True)
class Costs:
    """The run's measured costs: budget B (CPU-s/s), serving s and refusing r (CPU-s each)."""

    budget: float
    serve: float
    refuse: float

    def bound(self, offered: float) -> float:
        """(B - λr)/(s - r): the most goodput these costs allow at ``offered``/s."""
        return physical_limit(
            budget=self.budget, offered=offered, serve=self.serve, refuse=self.refuse
        )

    def minimum_unanswered(self, offered: float) -> float:
        """max(0, 1 - B/(λr)): the share that even refusing everything leaves unanswered."""
        demand = offered * self.refuse
        return max(0.0, 1.0 - self.budget / demand) if demand > 0 else 0.0


def row(record: StepRecord, capacity: float, costs: Costs | None = None) -> list[object]:
    r = record.result
    offered = r.really_offered_rate
    queue = (
        "-"
        if record.accept_queue_peak is None or record.accept_queue_mean is None
        else f"{record.accept_queue_peak}/{record.accept_queue_mean:.1f}"
    )
    return [
        MODES[record.mode].number,
        record.repetition,
        record.label,
        round(r.offered_rate),
        round(r.really_offered_rate),
        r.not_sent,
        f"{r.on_new_connection} ({100 * r.new_connection_share:.0f}%)",
        ms(r.lag_percentile(99)),
        round(r.goodput),
        round(100 * r.goodput / capacity, 1) if capacity else None,
        round(r.good("sign") / r.duration, 1),
        r.outcome_count("2xx"),
        pair(r.latency_percentile("2xx", 50), r.latency_percentile("2xx", 99)),
        r.outcome_count("429"),
        r.outcome_count("503"),
        pair(r.rejection_percentile(50), r.rejection_percentile(99)),
        r.missing_retry_after,
        r.unanswered,
        r.outcome_count("other_5xx"),
        f"{r.outcome_count('connect_error')}/{r.outcome_count('reset')}",
        "-" if record.cpu_per_request is None else f"{record.cpu_per_request * 1000:.3f}",
        f"{mib(record.rss_before)}/{mib(record.rss_peak)}/{mib(record.rss_after)}",
        queue,
        "-" if record.listen_overflows is None else record.listen_overflows,
        "-" if costs is None else round(costs.bound(offered)),
        "-" if costs is None else round(100 * costs.minimum_unanswered(offered), 1),
        flags(record),
    ]


SUMMARY_HEADERS = [
    "mode",
    "load",
    "goodput/s",
    "% of cap",
    "% of due good",
    "sign good/s",
    "2xx p99 ms",
    "rej p99 ms",
    "unanswered",
    "% unanswered",
    "other 5xx",
    "CPU ms/req",
    "RSS growth MiB",
]


def summary_rows(records: Sequence[StepRecord], capacity: float) -> list[list[object]]:
    """Median (min-max) over the repetitions of each mode and load."""
    rows: list[list[object]] = []
    labels = list(dict.fromkeys(record.label for record in records))
    for key in sorted({record.mode for record in records}, key=lambda k: MODES[k].number):
        for label in labels:
            group = [r for r in records if r.mode == key and r.label == label]
            if not group:
                continue

            def text(values: list[float], digits: int = 0) -> str:
                found = spread(values)
                return "-" if found is None else found.text(digits)

            def present(values: list[float | None]) -> list[float]:
                return [value for value in values if value is not None]

            results = [g.result for g in group]
            rows.append(
                [
                    MODES[key].number,
                    label,
                    text([r.goodput for r in results]),
                    text([100 * r.goodput / capacity for r in results] if capacity else [], 1),
                    text([100 * r.good_share() for r in results], 1),
                    text([r.good("sign") / r.duration for r in results], 1),
                    text(present([ms(r.latency_percentile("2xx", 99)) for r in results])),
                    text(present([ms(r.rejection_percentile(99)) for r in results])),
                    text([float(r.unanswered) for r in results]),
                    text([100 * r.unanswered / r.scheduled for r in results if r.scheduled], 1),
                    text([float(r.outcome_count("other_5xx")) for r in results]),
                    text(
                        present(
                            [
                                None if g.cpu_per_request is None else g.cpu_per_request * 1000
                                for g in group
                            ]
                        ),
                        3,
                    ),
                    text(
                        [
                            ((g.rss_peak or 0) - (g.rss_before or 0)) / 2**20
                            for g in group
                            if g.rss_before
                        ],
                        1,
                    ),
                ]
            )
    return rows


REFUSAL_HEADERS = ["mode", "load", "refusals by layer (summed over repetitions)"]


def refusal_rows(records: Sequence[StepRecord]) -> list[list[object]]:
    totals: dict[tuple[str, str], dict[str, float]] = {}
    for record in records:
        bucket = totals.setdefault((record.mode, record.label), {})
        for layer, count in record.refusals.items():
            bucket[layer] = bucket.get(layer, 0.0) + count
    return [
        [
            MODES[mode].number,
            label,
            ", ".join(f"{layer} {count:,.0f}" for layer, count in sorted(layers.items())) or "none",
        ]
        for (mode, label), layers in totals.items()
    ]


def median_goodput(records: Sequence[StepRecord], mode: str, label: str) -> float | None:
    found = spread([r.result.goodput for r in records if r.mode == mode and r.label == label])
    return None if found is None else found.median


def comparisons(records: Sequence[StepRecord], labels: Sequence[str]) -> list[str]:
    """The issue's head-to-head targets, as ratios of median goodput."""

    def ratio(label: str, a: str, b: str) -> str:
        top, bottom = median_goodput(records, a, label), median_goodput(records, b, label)
        if top is None or bottom is None:
            return "-"
        return "inf" if bottom == 0 else f"{top / bottom:.2f}"

    lines = []
    for label in labels:
        lines.append(
            f"at {label}: mode 2 / mode 1 = {ratio(label, 'direct-on', 'direct-off')},"
            f" mode 2 / mode 3 = {ratio(label, 'direct-on', 'proxy-off')},"
            f" mode 4 / mode 3 = {ratio(label, 'proxy-on', 'proxy-off')}"
        )
    return lines


def search_capacity(
    args: argparse.Namespace, workdir: Path, citizens: CitizenCounter, out: Out
) -> tuple[CapacitySearch, list[StepRecord]]:
    """Mode 2's open-loop capacity, on its own freshly started stack."""
    steps: list[StepRecord] = []
    with mode_stack("direct-on", "capacity", args, workdir) as stack:
        out(f"capacity: mode 2 at {stack.server.printable}")
        out(f"  CPU cap: {stack.cap.description if stack.cap else 'none'}")
        base = flood_base(stack, args)

        def probe(rate: float) -> bool:
            time.sleep(args.pause)
            record = measure_step(
                stack,
                base,
                rate=rate,
                duration=args.step_seconds,
                citizens=citizens,
                seed=100 + len(steps),
                label=f"step {rate:,.0f}/s",
                processes=args.generator_processes,
                cpus=args.generator_cpus,
            )
            steps.append(record)
            r = record.result
            verdict = "pass" if step_passes(record) else "FAIL"
            out(
                f"  step {rate:>8,.1f}/s: {100 * r.good_share():5.1f}% good within"
                f" {r.slo * 1000:g} ms -> {verdict}; 2xx p99"
                f" {ms(r.latency_percentile('2xx', 99))} ms, 503 {r.outcome_count('503')},"
                f" 429 {r.outcome_count('429')}, unanswered {r.unanswered}, lag p99"
                f" {ms(r.lag_percentile(99))} ms, CPU"
                f" {(record.cpu_per_request or 0) * 1000:.3f} ms/req {flags(record)}"
            )
            return step_passes(record)

        search = find_capacity(
            probe,
            start=args.step_start,
            factor=args.step_factor,
            precision=args.knee_precision,
            ceiling=args.max_rate / max(args.levels),
            max_steps=args.max_steps,
        )
    return search, steps


def mode_stack(
    key: str, name: str, args: argparse.Namespace, workdir: Path
) -> AbstractContextManager[Stack]:
    """A mode's processes under the run's CPU cap and proxy settings."""
    return running_stack(
        MODES[key],
        workdir=workdir,
        name=name,
        cpu_fraction=args.cpu_cap,
        proxy_settings=ProxySettings(
            maxconn=args.proxy_maxconn,
            maxqueue=args.proxy_maxqueue,
            queue_timeout_ms=args.proxy_queue_ms,
        ),
    )


def flood_base(stack: Stack, args: argparse.Namespace) -> FloodConfig:
    """The run's flash crowd aimed at ``stack``; each step sets its own rate."""
    return flood_config(
        stack,
        parse_mix(args.mix, stack.petition_id),
        give_up=args.give_up,
        clients=args.clients,
        requests_per_connection=args.requests_per_connection,
    )


def flood_mode(
    key: str,
    repetition: int,
    capacity: float,
    args: argparse.Namespace,
    workdir: Path,
    citizens: CitizenCounter,
    out: Out,
) -> list[StepRecord]:
    """One mode on fresh processes: each level in turn, then recovery right after the last."""
    records: list[StepRecord] = []
    mode = MODES[key]
    with mode_stack(key, f"{key}-{repetition}", args, workdir) as stack:
        base = flood_base(stack, args)
        plan = [(f"{k:g}x", k, args.flood_seconds) for k in args.levels]
        plan.append((RECOVERY, args.recovery_multiple, args.recovery_seconds))
        for index, (label, multiple, seconds) in enumerate(plan):
            if label != RECOVERY:
                time.sleep(args.pause)  # recovery follows the biggest flood at once
            record = measure_step(
                stack,
                base,
                rate=capacity * multiple,
                duration=seconds,
                citizens=citizens,
                seed=1000 * repetition + index,
                label=label,
                repetition=repetition,
                multiple=multiple,
                processes=args.generator_processes,
                cpus=args.generator_cpus,
            )
            records.append(record)
            r = record.result
            out(
                f"  mode {mode.number} rep {repetition} {label}: offered"
                f" {r.really_offered_rate:,.0f}/s, goodput {r.goodput:,.0f}/s"
                f" ({100 * r.good_share():.1f}% of due), unanswered {r.unanswered},"
                f" CPU {(record.cpu_per_request or 0) * 1000:.3f} ms/req {flags(record)}"
            )
    return records


def progress(done: int, total: int, elapsed: float) -> str:
    """``step n of m``, with the time left at the pace of the steps done so far."""
    line = f"step {done + 1} of {total}"
    if done:
        left = elapsed / done * (total - done)
        line += f", about {left / 60:.1f} min left"
    return line


def run_overload(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    modes = [key for key in INTERLEAVED if key in args.modes]
    if any(MODES[key].proxy for key in modes) and not haproxy_available():
        raise SystemExit("haproxy is not installed: apt-get install -y haproxy (or --modes)")
    workdir = bench_workdir()
    citizens = CitizenCounter()
    started = time.monotonic()
    out(
        f"load: mix {args.mix}; Poisson arrivals; give-up {args.give_up:g} s; SLO 250 ms;"
        f" {args.clients} client addresses (127.x.y.z), each connection closed after"
        f" {args.requests_per_connection or 'unlimited'} requests; generator pool sized to"
        f" never bind (rate x give-up x 1.5 + 256 + clients); {args.generator_processes} generator"
        f" process(es) on core(s) {','.join(map(str, args.generator_cpus))}"
    )
    out(
        f"proxy: HAProxy (config/haproxy/haproxy.cfg), maxconn {args.proxy_maxconn},"
        f" maxqueue {args.proxy_maxqueue}, timeout queue {args.proxy_queue_ms} ms,"
        " http-reuse always, one thread, in the server's cgroup; Qatysu trusts its"
        " X-Forwarded-For (QATYSU_SERVER__TRUSTED_PROXIES)"
    )
    out(f"server code: {server_code()}")
    costs: dict[str, Any] | None = None
    if args.costs:
        costs = measure_costs(args, workdir, out)
    search, capacity_steps = search_capacity(args, workdir, citizens, out)
    capacity = search.capacity
    open_ended = "  (open-ended: no step failed below --max-rate)" if search.open_ended else ""
    out(f"capacity (mode 2): {capacity:,.1f}/s{open_ended}")
    records: list[StepRecord] = []
    if capacity <= 0:
        out("no step passed: no capacity to multiply, floods skipped")
    else:
        plan = [(r, key) for r in range(1, args.repetitions + 1) for key in modes]
        floods_started = time.monotonic()
        for done, (repetition, key) in enumerate(plan):
            out(progress(done, len(plan), time.monotonic() - floods_started))
            records.extend(flood_mode(key, repetition, capacity, args, workdir, citizens, out))
    elapsed = time.monotonic() - started
    labels = list(dict.fromkeys(record.label for record in records))
    out("")
    run_costs = (
        Costs(budget=args.cpu_cap, serve=costs["serve_direct"], refuse=costs["refuse_direct"])
        if costs is not None and "serve_direct" in costs
        else None
    )
    out(f"## Every row (capacity {capacity:,.1f}/s; CPU cap {args.cpu_cap:g} of a core)")
    if run_costs is not None:
        out(
            f"bound/s = (B - λr)/(s - r) and min unanswered = max(0, 1 - B/(λr)) with λ the"
            f" row's offered rate, B = {run_costs.budget:g} CPU-s/s,"
            f" s = {run_costs.serve * 1e3:.3f} ms and r = {run_costs.refuse * 1e3:.3f} ms"
            " measured in this run (costs above)"
        )
    out(markdown_table(ROW_HEADERS, [row(record, capacity, run_costs) for record in records]))
    out("")
    out(f"## Median (min-max) over {args.repetitions} interleaved repetitions")
    out(markdown_table(SUMMARY_HEADERS, summary_rows(records, capacity)))
    out("")
    out("## Refusals by layer (/metrics and HAProxy stats, before and after each step)")
    out(markdown_table(REFUSAL_HEADERS, refusal_rows(records)))
    out("")
    out("## Head to head (ratios of median goodput)")
    for line in comparisons(records, [label for label in labels if label != RECOVERY]):
        out(line)
    limits: list[str] = []
    if costs is not None and "serve_direct" in costs and capacity > 0:
        out("")
        out("## The physical limit at this capacity (costs measured above, formula in README)")
        for limit in limit_lines(
            budget=args.cpu_cap,
            capacity=capacity,
            serve=costs["serve_direct"],
            refuse=costs["refuse_direct"],
            multiples=tuple(k for k in args.levels if k > 1),
        ):
            limits.append(limit.text())
            out(limit.text())
            achieved = median_goodput(records, "direct-on", f"{limit.multiple:g}x")
            if achieved is not None and limit.limit > 0:
                out(
                    f"  mode 2 median goodput {achieved:,.0f}/s ="
                    f" {100 * achieved / limit.limit:.0f}% of this limit"
                )
    behind = sorted({f"mode {MODES[r.mode].number} {r.label}" for r in records if flags(r)})
    if behind:
        out(f"\nrows flagged (generator-bound or pool bound): {', '.join(behind)}")
    out(f"\nwall time {elapsed / 60:.1f} min")
    return {
        "capacity": capacity,
        "capacity_open_ended": search.open_ended,
        "capacity_steps": [record.summary() for record in capacity_steps],
        "costs": costs,
        "physical_limits": limits,
        "rows": [record.summary() for record in records],
        "wall_seconds": elapsed,
        "lag_budget_ms": LAG_P99_BUDGET * 1000,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_crowd_arguments(parser)
    add_cpu_cap(parser)
    parser.add_argument(
        "--modes",
        type=comma_separated,
        default=list(INTERLEAVED),
        help="comma-separated: direct-off, direct-on, proxy-off, proxy-on",
    )
    parser.add_argument("--levels", type=multiples, default=(1.0, 3.0, 10.0))
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    parser.add_argument("--recovery-seconds", type=float, default=4.0)
    parser.add_argument("--recovery-multiple", type=float, default=0.5)
    parser.add_argument("--step-start", type=float, default=50.0)
    parser.add_argument("--step-factor", type=float, default=1.5)
    parser.add_argument(
        "--knee-precision",
        type=float,
        default=0.05,
        help="bisect the knee until the gap is this share of the rate",
    )
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between steps")
    parser.add_argument(
        "--max-rate",
        type=float,
        default=3000.0,
        help="the most the generator offers on schedule; capacity is not searched above"
        " this divided by the highest level",
    )
    add_generator_arguments(parser)
    parser.add_argument("--proxy-maxconn", type=int, default=32)
    parser.add_argument("--proxy-maxqueue", type=int, default=64)
    parser.add_argument("--proxy-queue-ms", type=int, default=150)
    parser.add_argument(
        "--no-costs",
        dest="costs",
        action="store_false",
        help="skip the per-request cost measurement (and so the physical limit)",
    )


def multiples(text: str) -> tuple[float, ...]:
    values = tuple(float(part) for part in text.split(",") if part.strip())
    if not values or any(value <= 0 or not math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError("levels are positive multiples, e.g. 1,3,10")
    return values
