"""The benchmark's arithmetic and formatting; no server is started here."""

from __future__ import annotations

import itertools
import shlex
from array import array

from loadtests.bench import RUNNERS, build_parser
from loadtests.closedloop import signature_verdict
from loadtests.flood import FloodResult, format_flood_report
from loadtests.report import markdown_table
from loadtests.servers import REPO_ROOT


def test_markdown_table_aligns_numbers_right() -> None:
    table = markdown_table(["run", "req/s", "note"], [["hello", 1234.56, None], ["sign", 7, "a|b"]])
    assert table == (
        "| run | req/s | note |\n|---|---:|---|\n| hello | 1,234.6 | - |\n| sign | 7 | a\\|b |"
    )


def test_signature_verdicts() -> None:
    assert signature_verdict(100, 100, 110, 8) == "EQUAL"
    assert signature_verdict(100, 99, 110, 8).startswith("LOST: 1 ")
    assert signature_verdict(100, 111, 110, 8).startswith("PHANTOM: 1 ")
    assert "none lost" in signature_verdict(100, 104, 110, 8)


def flood_result() -> FloodResult:
    return FloodResult(
        offered_rate=3000,
        duration=2.0,
        give_up=2.0,
        scheduled=6000,
        sent=6000,
        counts={"read": {"2xx": 1800, "503": 3600}, "sign": {"2xx": 200, "429": 400}},
        within_slo={"read": 1800, "sign": 200},
        missing_retry_after=7,
        latencies={
            "2xx": array("d", [0.010, 0.020, 0.200]),
            "503": array("d", [0.001]),
            "429": array("d", [0.002]),
        },
        lags=array("d", [0.0005, 0.030]),
    )


def test_flood_report_flags_a_generator_behind_schedule() -> None:
    report = format_flood_report(flood_result())
    assert "goodput             1000/s" in report
    assert "GENERATOR FELL BEHIND SCHEDULE" in report
    assert "503                 3600" in report
    assert "without Retry-After 7 of the 429/503" in report


def test_flood_report_says_when_the_generators_pool_bound() -> None:
    result = flood_result()
    result.counts["read"]["not_sent"] = 50
    result.connection_pool = 64
    report = format_flood_report(result)
    assert "50 not sent: the generator's pool of 64 connections BOUND" in report


def test_the_benchmark_offers_overload_costs_and_the_generator_ceiling() -> None:
    parser = build_parser()
    overload = parser.parse_args(["overload", "--levels", "3,10", "--modes", "direct-on"])
    assert overload.levels == (3.0, 10.0)
    assert overload.modes == ["direct-on"]
    assert overload.costs
    assert not parser.parse_args(["overload", "--no-costs"]).costs
    assert parser.parse_args(["costs"]).cases[0] == "read_warm"
    assert parser.parse_args(["generator", "--rates", "100,200"]).rates == [100.0, 200.0]


def bench_recipe() -> list[list[str]]:
    """The argument lists of the ``python -m loadtests.bench`` lines of ``make bench``."""
    lines = (REPO_ROOT / "Makefile").read_text().splitlines()
    start = lines.index("bench: $(STAMP_DEV)") + 1
    recipe = itertools.takewhile(lambda line: line.startswith("\t"), lines[start:])
    return [shlex.split(line.split("-m loadtests.bench", 1)[1]) for line in recipe]


def test_make_bench_runs_every_benchmark_once_with_arguments_the_cli_accepts() -> None:
    parser = build_parser()
    modes = [parser.parse_args(argv).mode for argv in bench_recipe()]
    assert sorted(modes) == sorted(RUNNERS)
