"""The overload report's rows, medians, refusals and head-to-head ratios, from fixed records."""

from __future__ import annotations

from array import array

import pytest

from loadtests.costs import cost_per_target
from loadtests.flood import FloodResult
from loadtests.overload import (
    Costs,
    comparisons,
    flags,
    progress,
    refusal_rows,
    row,
    step_passes,
    summary_rows,
)
from loadtests.stacks import StepRecord


def result(good: int, *, rejected: int = 0, unanswered: int = 0, not_sent: int = 0) -> FloodResult:
    due = good + rejected + unanswered + not_sent
    counts = {"read": {"2xx": good, "503": rejected, "timeout": unanswered}}
    if not_sent:
        counts["read"]["not_sent"] = not_sent
    return FloodResult(
        offered_rate=due / 2.0,
        duration=2.0,
        give_up=2.0,
        scheduled=due,
        sent=due - not_sent,
        connection_pool=64,
        on_new_connection=good // 2,
        counts=counts,
        within_slo={"read": good},
        latencies={
            "2xx": array("d", [0.010] * good),
            "503": array("d", [0.002] * rejected),
            "timeout": array("d", [2.0] * unanswered),
        },
        lags=array("d", [0.001] * due),
    )


def record(mode: str, label: str, repetition: int, flood: FloodResult) -> StepRecord:
    return StepRecord(
        mode=mode,
        label=label,
        repetition=repetition,
        multiple=3.0,
        result=flood,
        cpu_seconds=0.5,
        rss_before=100 * 2**20,
        rss_peak=110 * 2**20,
        rss_after=105 * 2**20,
        qatysu={"qatysu_admission_rejected_total{priority=normal,reason=edge}": float(repetition)},
        haproxy={},
    )


def test_a_row_takes_every_figure_from_the_record() -> None:
    step = record("direct-on", "3x", 1, result(200, rejected=100, unanswered=50, not_sent=50))
    assert row(step, capacity=100.0) == [
        2,
        1,
        "3x",
        200,
        175,
        50,
        "100 (29%)",
        1.0,
        100,
        100.0,
        0.0,
        200,
        "10.0/10.0",
        0,
        100,
        "2.0/2.0",
        0,
        50,
        0,
        "0/0",
        "1.429",
        "100.0/110.0/105.0",
        "-",
        "-",
        "-",
        "-",
        "POOL BOUND",
    ]


def test_a_row_gives_the_kernels_queue_and_the_bound_from_the_runs_costs() -> None:
    step = record("direct-on", "3x", 1, result(200, rejected=100, unanswered=50, not_sent=50))
    step.accept_queue_peak, step.accept_queue_mean, step.listen_overflows = 41, 3.25, 1200
    costs = Costs(budget=0.2, serve=0.002, refuse=0.0005)
    # 175/s offered: (0.2 - 175 x 0.0005) / (0.002 - 0.0005) = 75/s, and refusing all fits B.
    assert row(step, capacity=100.0, costs=costs)[-5:] == ["41/3.2", 1200, 75, 0.0, "POOL BOUND"]


def test_the_minimum_unanswered_share_is_what_refusing_everything_cannot_afford() -> None:
    costs = Costs(budget=0.2, serve=0.002, refuse=0.0005)
    assert costs.minimum_unanswered(400.0) == 0.0  # λr = B exactly: all can be refused
    assert costs.minimum_unanswered(1000.0) == pytest.approx(0.6)  # λr = 0.5 = 2.5 B
    assert costs.bound(1000.0) == 0.0
    assert costs.minimum_unanswered(0.0) == 0.0


def test_progress_says_which_step_and_the_time_left_at_the_pace_so_far() -> None:
    assert progress(0, 12, 0.0) == "step 1 of 12"
    assert progress(3, 12, 180.0) == "step 4 of 12, about 9.0 min left"


def test_capacity_needs_99_percent_good() -> None:
    assert step_passes(record("direct-on", "s", 0, result(99, unanswered=1)))
    assert not step_passes(record("direct-on", "s", 0, result(98, rejected=2)))


def test_a_late_generator_flags_the_row() -> None:
    late = result(10)
    late.lags = array("d", [0.5] * 10)
    assert flags(record("direct-on", "3x", 1, late)) == "GENERATOR-BOUND"
    assert flags(record("direct-on", "3x", 1, result(10))) == ""


def test_summary_gives_median_and_range_over_repetitions() -> None:
    records = [
        record("direct-on", "3x", 1, result(100)),
        record("direct-on", "3x", 2, result(300)),
        record("direct-on", "3x", 3, result(200, unanswered=20)),
    ]
    (summary,) = summary_rows(records, capacity=100.0)
    assert summary[:3] == [2, "3x", "100 (50-150)"]
    assert summary[3] == "100.0 (50.0-150.0)"
    assert summary[4] == "100.0 (90.9-100.0)"
    assert summary[8] == "0 (0-20)"


def test_refusals_are_summed_over_repetitions() -> None:
    records = [record("proxy-on", "10x", n, result(1)) for n in (1, 2, 3)]
    assert refusal_rows(records) == [[4, "10x", "admission:edge 6"]]


def test_head_to_head_ratios_use_median_goodput() -> None:
    records = [
        record("direct-on", "10x", 1, result(400)),
        record("direct-off", "10x", 1, result(100)),
        record("proxy-off", "10x", 1, result(200)),
        record("proxy-on", "10x", 1, result(300)),
    ]
    assert comparisons(records, ["10x"]) == [
        "at 10x: mode 2 / mode 1 = 4.00, mode 2 / mode 3 = 2.00, mode 4 / mode 3 = 1.50"
    ]
    assert comparisons(records[:1], ["10x"]) == [
        "at 10x: mode 2 / mode 1 = -, mode 2 / mode 3 = -, mode 4 / mode 3 = -"
    ]


def test_cost_per_request_subtracts_idle_and_the_answers_charged_elsewhere() -> None:
    # 0.5 CPU-s, 0.1 idle, 100 reads served at 1 ms each, 1,000 refusals.
    per_refusal, charged = cost_per_target(
        cpu=0.5,
        idle=0.1,
        outcomes={"2xx": 100, "503": 1000},
        targets=("503",),
        charged={"2xx": 0.001},
    )
    assert charged == 0.1
    assert per_refusal is not None
    assert abs(per_refusal - 0.0003) < 1e-12
    none, _ = cost_per_target(cpu=0.5, idle=0.1, outcomes={"2xx": 1}, targets=("429",), charged={})
    assert none is None
