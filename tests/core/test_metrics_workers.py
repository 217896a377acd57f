"""Process metrics under ``--workers``: multiprocess mode has none, so each live process's own
``process_*`` series are exported, labelled by its pid."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from core.metrics import WorkerProcessCollector
from tests.core.test_workers import WORKERS, Workers, _get


def process_samples(text: str, name: str) -> dict[str, float]:
    """The value of ``name`` per pid label in an exposition."""
    pattern = re.compile(rf'^{name}\{{pid="(\d+)"\}} (\S+)$', flags=re.MULTILINE)
    return {pid: float(value) for pid, value in pattern.findall(text)}


def test_the_collector_reports_each_live_process_with_value_files_once(tmp_path: Path) -> None:
    alive, exited = os.getpid(), 2**22 + 7  # above any pid_max, so never a running process
    for name in (f"counter_{alive}.db", f"gauge_livesum_{alive}.db", f"counter_{exited}.db"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a value file")
    registry = CollectorRegistry()
    registry.register(WorkerProcessCollector(tmp_path))

    text = generate_latest(registry).decode()

    assert WorkerProcessCollector(tmp_path).live_pids() == [alive]
    assert list(process_samples(text, "process_resident_memory_bytes")) == [str(alive)]
    assert process_samples(text, "process_cpu_seconds_total")[str(alive)] > 0
    assert "# TYPE process_cpu_seconds_total counter" in text


def test_an_empty_directory_gives_no_process_metrics(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    registry.register(WorkerProcessCollector(tmp_path))

    assert "process_" not in generate_latest(registry).decode()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    server = Workers(tmp_path / "data")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_under_two_workers_metrics_show_each_workers_process_metrics(workers: Workers) -> None:
    for _ in range(10):
        assert _get(workers.url + "/api/v1/petitions")[0] == 200
    pids = {str(pid) for pid in workers.worker_pids()}

    _, text = _get(workers.url + "/metrics")

    memory = process_samples(text, "process_resident_memory_bytes")
    assert len(pids) == WORKERS
    assert pids <= set(memory)
    assert all(memory[pid] > 1_000_000 for pid in pids)
    assert pids <= set(process_samples(text, "process_cpu_seconds_total"))
    assert pids <= set(process_samples(text, "process_open_fds"))
    assert len(re.findall(r"^qatysu_build_info\{", text, flags=re.MULTILINE)) == 1
