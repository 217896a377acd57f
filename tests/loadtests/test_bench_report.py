"""The benchmark's arithmetic and formatting; no server is started here."""

from __future__ import annotations

import argparse
from array import array

from loadtests.bench import (
    LevelRow,
    build_parser,
    cpu_fraction_needed,
    markdown_table,
    overload_row,
    signature_verdict,
    step_rates,
)
from loadtests.flood import FloodResult, format_flood_report


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


def overload_args(max_rate: float) -> argparse.Namespace:
    return build_parser().parse_args(["overload", "--max-rate", str(max_rate)])


def test_cpu_cap_only_when_ten_times_capacity_exceeds_the_generator() -> None:
    assert cpu_fraction_needed(500, overload_args(8000)) is None
    assert cpu_fraction_needed(0, overload_args(8000)) is None
    assert cpu_fraction_needed(1600, overload_args(8000)) == 0.5
    assert cpu_fraction_needed(4000, overload_args(8000)) == 0.2
    assert cpu_fraction_needed(1_000_000, overload_args(8000)) == 0.05


def test_step_rates_are_geometric_and_bounded() -> None:
    assert list(step_rates(100, 2, 1000)) == [100, 200, 400, 800]
    assert len(list(step_rates(1, 1.0001, 10))) == 25


def flood_result() -> FloodResult:
    return FloodResult(
        offered_rate=3000,
        duration=2.0,
        give_up=2.0,
        scheduled=6000,
        sent=6000,
        counts={"read": {"2xx": 1800, "503": 3600}, "sign": {"2xx": 200, "429": 400}},
        latencies={
            "2xx": array("d", [0.010, 0.020, 0.200]),
            "503": array("d", [0.001]),
            "429": array("d", [0.002]),
        },
        lags=array("d", [0.0005, 0.030]),
    )


def test_overload_row_takes_every_figure_from_the_result() -> None:
    row = LevelRow(
        mode="on",
        level="3x",
        result=flood_result(),
        rss_before=100 * 2**20,
        rss_after=120 * 2**20,
        rss_peak=130 * 2**20,
        capacity=1000.0,
    )
    assert overload_row(row) == [
        "on",
        "3x",
        3000,
        3000,
        30.0,
        1000,
        100.0,
        100,
        20.0,
        200.0,
        400,
        "2.0/2.0",
        3600,
        "1.0/1.0",
        0,
        0,
        "0/0",
        "100.0/130.0/120.0",
    ]


def test_flood_report_flags_a_generator_behind_schedule() -> None:
    report = format_flood_report(flood_result())
    assert "goodput             1000/s" in report
    assert "GENERATOR FELL BEHIND SCHEDULE" in report
    assert "503                 3600" in report
