"""What one request costs the server, served or refused at each layer.

Each case starts a fresh Qatysu process (admission on, uncapped, pinned to the server's core),
reads its idle CPU rate, floods it open-loop at a modest rate for a few seconds with one kind of
request, and divides the process CPU time of the measured window (less the idle rate) by the
requests that got the case's answer. Settings that exist today force each refusal:

- served cached read, on a warm connection and on a new one each (their difference is the cost
  of a new connection: accept, handshake, protocol set-up and close);
- a signature (a new citizen each, committed before the 201);
- 429 from the rate-limit middleware: a tiny ``QATYSU_ADMISSION__RATE_OVERRIDES`` budget;
- 503 at the edge, before parsing: a list (which the fast lane does not answer) under an
  operator's brownout of 0.98 (``QATYSU_ADMISSION__BROWNOUT``), so the edge refuses all but a
  few; those are charged at the warm-read cost (which understates a list, so the edge's cost
  is, if anything, overstated);
- 503 at the connection cap: ``QATYSU_SERVER__MAX_CONNECTIONS=1`` with one connection held open,
  so every new connection gets the canned refusal;
- 503 from the middleware for a write under storage pressure: ``QATYSU_WRITER__COMMIT_TIMEOUT``
  below the time a commit takes, so that after the first commit the writer reports full
  pressure and every signature is refused before its handler.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from loadtests.flood import parse_mix
from loadtests.limits import blended_cost, limit_lines
from loadtests.options import DEFAULT_GIVE_UP, comma_separated
from loadtests.report import Out, markdown_table
from loadtests.seeding import SetupError
from loadtests.servers import ProxySettings, bench_workdir, cpu_seconds
from loadtests.stacks import MODES, CitizenCounter, flood_config, measure_step, running_stack

# A case is isolated when at least this share of its requests got the answer it measures.
ISOLATED_SHARE = 0.9


@dataclass(frozen=True, kw_only=True)
class Case:
    key: str
    title: str
    mix: str
    target: str  # the outcome whose cost is measured
    # Outcomes that are the same answer seen differently: a canned refusal whose connection
    # closes before the client reads it arrives as a reset.
    also: tuple[str, ...] = ()
    # A warm connection by default: a few clients, each keeping its connection alive.
    clients: int = 16
    requests_per_connection: int = 0
    env: dict[str, str] = field(default_factory=dict)
    hold_connection: bool = False
    rate_share: float = 1.0
    # Set the stage on a server without ``env`` first: the case's settings would refuse it.
    stage_without_env: bool = False


CASES = (
    Case(
        key="read_warm",
        title="served cached read, warm connection",
        mix="read=1",
        target="2xx",
    ),
    Case(
        key="read_new",
        title="served cached read, new connection each",
        mix="read=1",
        target="2xx",
        clients=2048,
        requests_per_connection=1,
    ),
    Case(
        key="sign_warm",
        title="signature (new citizen), warm connection",
        mix="sign=1",
        target="2xx",
        rate_share=0.5,
    ),
    Case(
        key="refuse_429",
        title="429 at the rate-limit middleware, warm connection",
        mix="read=1",
        target="429",
        env={"QATYSU_ADMISSION__RATE_OVERRIDES": '{"public-read": {"rate": 0.001, "burst": 1}}'},
    ),
    Case(
        key="refuse_edge",
        title="503 at the edge (before parsing), warm connection",
        mix="list=1",
        target="503",
        env={
            "QATYSU_ADMISSION__BROWNOUT": "0.98",
            "QATYSU_ADMISSION__RATE_OVERRIDES": '{"public-list": {"rate": 1e5, "burst": 100000}}',
        },
    ),
    Case(
        key="refuse_connection",
        title="503 at the connection cap (canned, then close)",
        mix="read=1",
        target="503",
        also=("reset",),
        clients=2048,
        requests_per_connection=1,
        env={
            "QATYSU_SERVER__MAX_CONNECTIONS": "1",
            "QATYSU_SERVER__HEADER_TIMEOUT": "600",
            "QATYSU_SERVER__KEEPALIVE_TIMEOUT": "600",
        },
        hold_connection=True,
    ),
    Case(
        key="refuse_writer_503",
        title="503 at the middleware for a signature (writer pressure), warm connection",
        mix="sign=1",
        target="503",
        env={"QATYSU_WRITER__COMMIT_TIMEOUT": "0.003"},
        rate_share=0.5,
        stage_without_env=True,
    ),
)


@dataclass(frozen=True, kw_only=True)
class CaseResult:
    case: Case
    outcomes: dict[str, int]
    cpu_seconds: float
    idle_seconds: float
    charged_seconds: float
    per_target: float | None

    @property
    def answered(self) -> int:
        return sum(self.outcomes.values())

    @property
    def isolated(self) -> bool:
        labels = (self.case.target, *self.case.also)
        target = sum(self.outcomes.get(label, 0) for label in labels)
        return self.answered > 0 and target >= ISOLATED_SHARE * self.answered


def cost_per_target(
    *,
    cpu: float,
    idle: float,
    outcomes: dict[str, int],
    targets: tuple[str, ...],
    charged: dict[str, float],
) -> tuple[float | None, float]:
    """CPU per request of the target outcome, after the idle share and known other costs.

    ``charged`` gives a known cost per request for other outcomes that had to be served in the
    same window (the reads the edge let through); they are subtracted, not averaged in.
    """
    known = sum(outcomes.get(label, 0) * cost for label, cost in charged.items())
    count = sum(outcomes.get(label, 0) for label in targets)
    if count == 0:
        return None, known
    return max(0.0, cpu - idle - known) / count, known


def hold_one_connection(port: int) -> socket.socket:
    """An open connection that never sends a request: it fills a cap of one."""
    sock = socket.create_connection(("127.0.0.1", port))
    time.sleep(0.2)
    return sock


def measure_case(
    case: Case,
    *,
    rate: float,
    seconds: float,
    workdir: Path,
    citizens: CitizenCounter,
    warm_read_cost: float | None,
    out: Out,
) -> CaseResult:
    # Mode 2, uncapped: what a request costs, not how many fit in a budget.
    uncapped = partial(
        running_stack,
        MODES["direct-on"],
        workdir=workdir,
        name=f"cost-{case.key}",
        cpu_fraction=None,
        proxy_settings=ProxySettings(),
    )
    petition_id = None
    if case.stage_without_env:
        with uncapped() as stage:
            petition_id = stage.petition_id
    with uncapped(extra_env=case.env, petition_id=petition_id) as stack:
        held = hold_one_connection(stack.server.port) if case.hold_connection else None
        try:
            base = flood_config(
                stack,
                parse_mix(case.mix, stack.petition_id),
                give_up=DEFAULT_GIVE_UP,
                clients=case.clients,
                requests_per_connection=case.requests_per_connection,
            )
            case_rate = rate * case.rate_share
            # Warm up (caches, the edge's refusal share, the writer's pressure), not measured.
            scrape = not case.hold_connection  # /metrics would be refused at a cap of one
            measure_step(
                stack,
                base,
                rate=case_rate,
                duration=1.5,
                citizens=citizens,
                seed=1,
                label="warm",
                scrape=scrape,
            )
            idle_before = cpu_seconds(stack.pids)
            time.sleep(1.0)
            idle_rate = cpu_seconds(stack.pids) - idle_before
            started = time.monotonic()
            record = measure_step(
                stack,
                base,
                rate=case_rate,
                duration=seconds,
                citizens=citizens,
                seed=2,
                label=case.key,
                scrape=scrape,
            )
            wall = time.monotonic() - started
        finally:
            if held is not None:
                held.close()
    outcomes = record.result.outcome_totals
    charged = {"2xx": warm_read_cost} if case.target != "2xx" and warm_read_cost else {}
    per_target, known = cost_per_target(
        cpu=record.cpu_seconds,
        idle=idle_rate * wall,
        outcomes=outcomes,
        targets=(case.target, *case.also),
        charged=charged,
    )
    result = CaseResult(
        case=case,
        outcomes={label: count for label, count in outcomes.items() if count},
        cpu_seconds=record.cpu_seconds,
        idle_seconds=idle_rate * wall,
        charged_seconds=known,
        per_target=per_target,
    )
    cost = "-" if per_target is None else f"{per_target * 1000:.3f} ms"
    out(
        f"  {case.title}: {cost} per {case.target}"
        f"  ({json.dumps(result.outcomes)}{'' if result.isolated else '; NOT ISOLATED'})"
    )
    return result


def measure_costs(args: argparse.Namespace, workdir: Path, out: Out) -> dict[str, Any]:
    """Every case, the derived serving and refusal costs, and the physical limit they imply."""
    out(
        f"costs: {args.cost_rate:g} requests/s (signatures at half that) for"
        f" {args.cost_seconds:g} s per case, each on a fresh uncapped server; process CPU"
        " (user + system, threads included) less its idle rate"
    )
    citizens = CitizenCounter(next_number=50_000_000)
    results: dict[str, CaseResult] = {}
    failures: dict[str, str] = {}
    for case in CASES:
        if case.key not in args.cases:
            continue
        warm = results.get("read_warm")
        try:
            results[case.key] = measure_case(
                case,
                rate=args.cost_rate,
                seconds=args.cost_seconds,
                workdir=workdir,
                citizens=citizens,
                warm_read_cost=None if warm is None else warm.per_target,
                out=out,
            )
        except (RuntimeError, SetupError, OSError) as error:
            failures[case.key] = str(error).splitlines()[0]
            out(f"  {case.title}: NOT MEASURED ({failures[case.key]})")
    out(
        markdown_table(
            ["case", "answers", "CPU s", "idle s", "charged s", "CPU ms each", "isolated"],
            [
                [
                    r.case.title,
                    ", ".join(f"{k}={v}" for k, v in r.outcomes.items()),
                    f"{r.cpu_seconds:.3f}",
                    f"{r.idle_seconds:.3f}",
                    f"{r.charged_seconds:.3f}",
                    "-" if r.per_target is None else f"{r.per_target * 1000:.3f}",
                    "yes" if r.isolated else "NO",
                ]
                for r in results.values()
            ],
        )
    )
    payload = derive(results, args, out)
    payload["not_measured"] = failures
    return payload


def derive(results: dict[str, CaseResult], args: argparse.Namespace, out: Out) -> dict[str, Any]:
    def cost(key: str) -> float | None:
        result = results.get(key)
        return result.per_target if result is not None and result.isolated else None

    read, read_new, sign = cost("read_warm"), cost("read_new"), cost("sign_warm")
    payload: dict[str, Any] = {
        "cases": {
            key: {
                "title": r.case.title,
                "env": r.case.env,
                "outcomes": r.outcomes,
                "cpu_seconds": r.cpu_seconds,
                "idle_seconds": r.idle_seconds,
                "charged_seconds": r.charged_seconds,
                "ms_each": None if r.per_target is None else r.per_target * 1000,
                "isolated": r.isolated,
            }
            for key, r in results.items()
        }
    }
    if read is None or read_new is None or sign is None:
        out("serving costs not isolated: no physical limit")
        return payload
    connection = max(0.0, read_new - read)
    per_connection = args.requests_per_connection
    shares = {
        kind.name: kind.weight for kind in parse_mix(args.mix, "P") if kind.name in {"read", "sign"}
    }
    serve = blended_cost(
        {"read": read, "sign": sign},
        shares,
        connection_cost=connection,
        requests_per_connection=per_connection,
    )
    connection_share = connection / per_connection if per_connection > 0 else 0.0
    refusals = {
        "429 (+ connection share)": cost("refuse_429"),
        "edge 503 (+ connection share)": cost("refuse_edge"),
        "connection refused (whole connection)": cost("refuse_connection"),
        "middleware 503, signature (+ connection share)": cost("refuse_writer_503"),
    }
    per_request = {
        name: (value if name.startswith("connection") else value + connection_share)
        for name, value in refusals.items()
        if value is not None
    }
    cheapest_name, refuse = min(per_request.items(), key=lambda item: item[1])
    out("")
    out(
        f"new connection: {connection * 1000:.3f} ms (new-connection read minus warm read);"
        f" a citizen's connection carries {per_connection or 'unlimited'} requests"
    )
    out(
        f"s, serving one request of the mix {args.mix} (with its share of a connection):"
        f" {serve * 1000:.3f} ms"
    )
    for name, value in per_request.items():
        out(f"r, {name}: {value * 1000:.3f} ms")
    out(f"cheapest refusal: {cheapest_name}, r = {refuse * 1000:.3f} ms")
    budget = args.cpu_cap
    capacity = budget / serve
    out(
        f"budget B = {budget:g} CPU-s/s; CPU-bound capacity C = B / s = {capacity:,.0f}/s;"
        " the most goodput a design paying these costs could reach, g <= (B - λr)/(s - r):"
    )
    for line in limit_lines(
        budget=budget, capacity=capacity, serve=serve, refuse=refuse, multiples=(3.0, 10.0)
    ):
        out("  " + line.text())
    payload.update(
        {
            "new_connection_ms": connection * 1000,
            "serve_direct": serve,
            "refuse_direct": refuse,
            "refuse_by_layer_ms": {name: value * 1000 for name, value in per_request.items()},
            "cheapest_refusal": cheapest_name,
            "budget": budget,
            "cpu_bound_capacity": capacity,
        }
    )
    return payload


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cost-rate", type=float, default=200.0, help="requests/s per case")
    parser.add_argument("--cost-seconds", type=float, default=4.0, help="measured seconds")
    parser.add_argument(
        "--cases",
        type=comma_separated,
        default=[case.key for case in CASES],
        help="comma-separated: " + ", ".join(case.key for case in CASES),
    )


def run_costs(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    return measure_costs(args, bench_workdir(), out)
