"""Real Locust runs against a real demo server: the smoke run, a failing gate, a missing secret.

The smoke run keeps the shipped error and protective-answer ratios but relaxes the latency
objectives: this machine runs the server, Locust and other tests on shared cores, so its
latencies say nothing about a release. What the run checks is that every user class works on
every channel without an error and that the gate judges the run. Latency is judged by
``make loadtest`` and real load tests, against ``loadtests/slo.toml`` as shipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadtests.slo import DEFAULT_THRESHOLDS_FILE, load_thresholds

REPO_ROOT = Path(__file__).resolve().parents[2]
ROUTE_CLASSES = ("citizen_write", "list", "official_write", "read")

pytestmark = pytest.mark.slow


def thresholds_file(path: Path, **latency_ms: tuple[float, float]) -> Path:
    """The shipped thresholds, with (p95, p99) replaced for the classes named."""
    lines = []
    for name, limit in load_thresholds(DEFAULT_THRESHOLDS_FILE).items():
        p95, p99 = latency_ms.get(name, (limit.p95_ms, limit.p99_ms))
        lines += [
            f"[{name}]",
            f"p95_ms = {p95}",
            f"p99_ms = {p99}",
            f"max_error_ratio = {limit.max_error_ratio}",
            f"max_protective_ratio = {limit.max_protective_ratio}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_against_a_demo_server(
    tmp_path: Path, slo_file: Path, *locust_args: str
) -> subprocess.CompletedProcess[str]:
    reports = tmp_path / "reports"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests.local",
            *locust_args,
            "--slo-file",
            str(slo_file),
            "--csv",
            str(reports / "locust"),
            "--html",
            str(reports / "locust.html"),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def gate_rows(stdout: str) -> dict[str, list[str]]:
    return {
        line.split()[0]: line.split()
        for line in stdout.splitlines()
        if line.split() and line.split()[0] in ROUTE_CLASSES
    }


def test_a_smoke_run_reaches_every_channel_without_errors_and_passes_the_gate(
    tmp_path: Path,
) -> None:
    relaxed = {name: (2000.0, 5000.0) for name in ROUTE_CLASSES}
    slo_file = thresholds_file(tmp_path / "smoke-slo.toml", **relaxed)
    completed = run_against_a_demo_server(tmp_path, slo_file, "-u", "20", "-r", "10", "-t", "20s")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Traceback" not in output
    assert re.search(r"^SLO gate: PASS \(\d+ requests\)$", completed.stdout, re.M), output
    channels = re.search(
        r"^requests by channel: consultations (\d+), information (\d+), petitions (\d+)$",
        completed.stdout,
        re.M,
    )
    assert channels is not None, output
    assert all(int(n) > 0 for n in channels.groups())
    rows = gate_rows(completed.stdout)
    assert sorted(rows) == sorted(ROUTE_CLASSES)
    for name, cells in rows.items():
        assert int(cells[1]) > 0, (name, cells)
        assert cells[4:6] == ["0", "(0.0%)"], (name, cells)  # no errors at all
    assert (tmp_path / "reports" / "locust_stats.csv").exists()
    verdict = json.loads((tmp_path / "reports" / "locust_slo.json").read_text())
    assert (verdict["passed"], sorted(verdict["classes"])) == (True, sorted(ROUTE_CLASSES))
    assert verdict["requests"] == sum(int(cells[1]) for cells in rows.values())
    report = (tmp_path / "reports" / "locust.html").read_text()
    assert '<section id="qatysu-slo-gate"' in report
    assert "SLO gate: PASS</h2>" in report


def test_a_threshold_no_run_can_meet_fails_the_gate_with_exit_code_1(tmp_path: Path) -> None:
    slo_file = thresholds_file(tmp_path / "strict-slo.toml", read=(0.0, 0.0))
    completed = run_against_a_demo_server(tmp_path, slo_file, "-u", "10", "-r", "10", "-t", "5s")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 1, output
    assert re.search(r"^SLO gate: FAIL \(\d+ requests\)$", completed.stdout, re.M), output
    read = gate_rows(completed.stdout)["read"]
    assert read[8:10] == ["FAIL:", "p95"], read
    verdict = json.loads((tmp_path / "reports" / "locust_slo.json").read_text())
    assert verdict["passed"] is False
    assert verdict["classes"]["read"]["failures"][0].startswith("p95 ")
    assert "SLO gate: FAIL</h2>" in (tmp_path / "reports" / "locust.html").read_text()


def test_without_a_secret_locust_stops_at_once_with_one_line_and_exit_code_2(
    tmp_path: Path,
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("QATYSU_JWT_SECRET", "QATYSU_SERVER__DATA_DIR")
    }
    started = time.monotonic()
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            str(REPO_ROOT / "loadtests" / "locustfile.py"),
            "--headless",
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "30s",
            "--host",
            "http://127.0.0.1:9",
        ],
        cwd=tmp_path,  # no var/dev-secrets.json here
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert completed.returncode == 2, completed.stderr
    errors = [line for line in completed.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, completed.stderr
    assert errors[0].endswith(
        f"no token secret: set QATYSU_JWT_SECRET to the server's, or run from the directory of "
        f"a local development server (its {tmp_path / 'var' / 'dev-secrets.json'} was not "
        "found or is not readable)"
    )
    assert "Traceback" not in completed.stderr
    assert "Ramping" not in completed.stderr  # no user was started
    assert elapsed < 20, f"took {elapsed:.1f} s of a 30 s run"
