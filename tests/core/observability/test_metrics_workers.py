"""Process metrics under ``--workers``: multiprocess mode has none, so each live process's own
``process_*`` series are exported, labelled by its pid."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from core.observability.metrics import WorkerProcessCollector
from tests.support.services import free_port, spawn_server

WORKERS = 2


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


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()
    except OSError:
        return 0, ""


@dataclass
class Workers:
    url: str
    process: subprocess.Popen[bytes]

    def worker_pids(self) -> set[str]:
        pid = self.process.pid
        return set(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """``qatysu serve --workers 2``, stopped (its whole process group) even if the test fails."""
    port = free_port()
    log = tmp_path / "server.log"
    process = spawn_server(port=port, workers=WORKERS, data_dir=tmp_path / "data", log_path=log)
    try:
        server = Workers(f"http://127.0.0.1:{port}", process)
        deadline = time.monotonic() + 60
        while get(server.url + "/readyz")[0] != 200:
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.slow
def test_under_two_workers_metrics_show_each_workers_process_metrics(workers: Workers) -> None:
    for _ in range(10):
        assert get(workers.url + "/api/v1/petitions")[0] == 200
    pids = workers.worker_pids()

    _, text = get(workers.url + "/metrics")

    memory = process_samples(text, "process_resident_memory_bytes")
    assert len(pids) == WORKERS
    assert pids <= set(memory)
    assert all(memory[pid] > 1_000_000 for pid in pids)
    assert pids <= set(process_samples(text, "process_cpu_seconds_total"))
    assert pids <= set(process_samples(text, "process_open_fds"))
    assert len(re.findall(r"^qatysu_build_info\{", text, flags=re.MULTILINE)) == 1
