"""The SLO gate's arithmetic: outcomes, percentiles, merging workers' ledgers, verdicts."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from loadtests.slo import (
    DEFAULT_THRESHOLDS_FILE,
    Ledger,
    Threshold,
    ThresholdsError,
    classify,
    judge,
    latency_bucket,
    load_thresholds,
    render,
    verdict,
    verdict_document,
    with_verdict_section,
)

LOOSE = Threshold(p95_ms=100, p99_ms=200, max_error_ratio=0.1, max_protective_ratio=0.2)


def test_an_expected_status_is_ok_even_when_it_is_a_4xx() -> None:
    assert classify(409, retry_after=False, expected=(200, 409)) == "ok"


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_with_retry_after_are_protective(status: int) -> None:
    assert classify(status, retry_after=True, expected=(200,)) == "protective"


@pytest.mark.parametrize(
    ("status", "retry_after"), [(429, False), (503, False), (500, True), (404, False), (0, False)]
)
def test_anything_else_unexpected_is_an_error(status: int, retry_after: bool) -> None:
    assert classify(status, retry_after=retry_after, expected=(200,)) == "error"


@pytest.mark.parametrize(
    ("milliseconds", "bucket"),
    [(0.2, 0), (7.6, 8), (99.4, 99), (123, 120), (987, 990), (1234, 1200), (56789, 57000)],
)
def test_latencies_are_kept_to_two_significant_figures_above_100_ms(
    milliseconds: float, bucket: int
) -> None:
    assert latency_bucket(milliseconds) == bucket


def ledger_with(route_class: str, latencies: list[float], **outcomes: int) -> Ledger:
    ledger = Ledger()
    for ms in latencies:
        ledger.record(route_class, "petitions", ms, "ok")
    for outcome, n in outcomes.items():
        for _ in range(n):
            ledger.record(route_class, "petitions", 5.0, outcome)  # type: ignore[arg-type]
    return ledger


def test_percentiles_are_nearest_rank() -> None:
    tally = ledger_with("read", [float(ms) for ms in range(1, 101)]).classes["read"]
    assert tally.percentile(0.95) == 95
    assert tally.percentile(0.99) == 99
    assert tally.percentile(1.0) == 100


def test_protective_answers_are_counted_but_not_timed() -> None:
    ledger = ledger_with("read", [10.0], protective=3)
    tally = ledger.classes["read"]
    assert tally.count == 4
    assert sum(tally.latencies.values()) == 1


def test_a_ledger_sent_by_a_worker_merges_into_the_masters() -> None:
    master = ledger_with("read", [10.0, 20.0], error=1)
    worker = ledger_with("read", [20.0, 30.0], protective=2)
    worker.record("list", "information", 40.0, "ok")
    master.merge(worker.drain())
    assert worker.count == 0
    assert master.classes["read"].outcomes == {"ok": 4, "error": 1, "protective": 2}
    assert master.classes["read"].latencies == {10: 1, 20: 2, 30: 1, 5: 1}
    assert master.channels == {"petitions": 7, "information": 1}


def test_a_class_within_every_threshold_passes() -> None:
    rows = judge(ledger_with("read", [50.0] * 99, error=1), {"read": LOOSE})
    assert [row.failures for row in rows] == [()]
    assert rows[0].errors == 1


def test_each_threshold_exceeded_is_named() -> None:
    ledger = ledger_with("read", [150.0] * 6 + [300.0] * 2, error=1, protective=3)
    (row,) = judge(ledger, {"read": LOOSE})
    # 1 error in 12 is within 10%; 3 protective answers in 12 are not within 20%.
    assert row.failures == ("p95 300 ms > 100", "p99 300 ms > 200", "protective 25.0% > 20.0%")


def test_the_error_ratio_fails_a_class_on_its_own() -> None:
    (row,) = judge(ledger_with("read", [1.0] * 8, error=2), {"read": LOOSE})
    assert row.failures == ("errors 20.0% > 10.0%",)


def test_a_route_class_without_a_threshold_fails() -> None:
    rows = judge(ledger_with("export", [1.0]), {"read": LOOSE})
    assert [(row.route_class, row.failures) for row in rows] == [
        ("export", ("no threshold for this route class",)),
        ("read", ()),
    ]


def test_a_run_without_requests_does_not_pass() -> None:
    ledger = Ledger()
    rows = judge(ledger, {"read": LOOSE})
    assert rows[0].passed
    assert not verdict(ledger, rows)


def test_the_table_shows_every_column_and_the_verdict() -> None:
    ledger = ledger_with("read", [10.0] * 9, protective=1)
    ledger.record("list", "information", 500.0, "ok")
    text = render(ledger, judge(ledger, {"read": LOOSE, "list": LOOSE}))
    lines = text.splitlines()
    assert lines[1].split() == [
        "route", "class", "count", "p95", "ms", "p99", "ms", "errors", "protective", "result"
    ]  # fmt: skip
    assert lines[2].split() == [
        "list", "1", "500", "500", "0", "(0.0%)", "0", "(0.0%)", "FAIL:", "p95", "500", "ms",
        ">", "100;", "p99", "500", "ms", ">", "200",
    ]  # fmt: skip
    assert lines[3].split() == [
        "read", "10", "10", "10", "0", "(0.0%)", "1", "(10.0%)", "pass"
    ]  # fmt: skip
    assert lines[-2] == "requests by channel: information 1, petitions 10"
    assert lines[-1] == "SLO gate: FAIL (11 requests)"


def test_the_shipped_thresholds_cover_the_four_route_classes() -> None:
    thresholds = load_thresholds(DEFAULT_THRESHOLDS_FILE)
    assert set(thresholds) == {"read", "list", "citizen_write", "official_write"}
    assert thresholds["read"].p95_ms == 250


def test_a_missing_thresholds_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ThresholdsError, match=r"nowhere\.toml"):
        load_thresholds(tmp_path / "nowhere.toml")


@pytest.mark.parametrize(
    "text",
    [
        "[read]\np95_ms = 1\n",
        "[read]\np95_ms = 1\np99_ms = 2\nmax_error_ratio = 0\nmax_protective_ratio = 0\nx = 1\n",
        '[read]\np95_ms = "fast"\np99_ms = 2\nmax_error_ratio = 0\nmax_protective_ratio = 0\n',
        "[read]\np95_ms = -1\np99_ms = 2\nmax_error_ratio = 0\nmax_protective_ratio = 0\n",
        "read = 3\n",
        "",
        "[read\n",
    ],
)
def test_a_malformed_thresholds_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "slo.toml"
    path.write_text(text)
    with pytest.raises(ThresholdsError, match=r"^SLO thresholds .*slo\.toml: "):
        load_thresholds(path)


# --- the verdict written for the reports --------------------------------------------------------


def test_the_verdict_document_gives_each_class_its_figures_thresholds_and_failures() -> None:
    ledger = ledger_with("read", [150.0] * 6 + [300.0] * 2, error=1, protective=3)
    thresholds = {"read": LOOSE, "list": LOOSE}
    rows = judge(ledger, thresholds)

    document = verdict_document(ledger, rows, thresholds)

    assert json.loads(json.dumps(document)) == document
    assert (document["passed"], document["requests"]) == (False, 12)
    assert document["classes"]["read"] == {
        "passed": False,
        "count": 12,
        "p95_ms": 300.0,
        "p99_ms": 300.0,
        "errors": 1,
        "protective": 3,
        "failures": ["p95 300 ms > 100", "p99 300 ms > 200", "protective 25.0% > 20.0%"],
        "thresholds": {
            "p95_ms": 100,
            "p99_ms": 200,
            "max_error_ratio": 0.1,
            "max_protective_ratio": 0.2,
        },
    }
    assert document["classes"]["list"]["count"] == 0
    assert document["classes"]["list"]["passed"] is True


def test_the_html_report_gets_the_gate_first_in_its_body_with_the_json_verdict() -> None:
    ledger = ledger_with("read", [50.0] * 10)
    rows = judge(ledger, {"read": LOOSE})
    report = '<html><head></head><body class="x"><div id="root"></div></body></html>'

    marked = with_verdict_section(report, ledger, rows, {"read": LOOSE})

    assert marked.startswith('<html><head></head><body class="x"><section id="qatysu-slo-gate"')
    assert marked.endswith('</section><div id="root"></div></body></html>')
    assert "SLO gate: PASS</h2>" in marked
    assert html.escape(render(ledger, rows)) in marked
    embedded = re.search(r'<script type="application/json" id="qatysu-slo">(.*?)</script>', marked)
    assert embedded is not None
    assert json.loads(embedded.group(1)) == verdict_document(ledger, rows, {"read": LOOSE})


def test_a_failure_reason_cannot_close_the_embedded_script_early() -> None:
    ledger = ledger_with("</script><b>", [50.0])
    rows = judge(ledger, {})

    marked = with_verdict_section("<body></body>", ledger, rows, {})

    assert marked.count("</script") == 1
    assert "<b>" not in marked  # escaped in the table, \u003c in the JSON
    embedded = re.search(r'id="qatysu-slo">(.*?)</script>', marked)
    assert embedded is not None
    assert "</script><b>" in json.loads(embedded.group(1))["classes"]
