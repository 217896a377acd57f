"""``qatysu serve --workers 2``: two processes behind one port, each with every protection.

The workers serve through the same guarded site as a single process: the head timeout cuts a
slowloris client, the connection cap answers a canned 503, and metrics come from both workers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.host.workers import prepare_multiprocess_metrics
from core.settings import build_settings
from tests.support.services import free_port, spawn_server

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 1.0
MAX_CONNECTIONS = 4
WORKERS = 2


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


class Workers:
    """``qatysu serve --workers 2`` on a free port, in its own process group."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / "server.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.process = spawn_server(
            port=self.port, workers=WORKERS, data_dir=data_dir, log_path=self.log_path, env=env
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if _get(self.url + "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f"the workers were not ready:\n{self.output()}"
            time.sleep(0.2)

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def guarded_workers(tmp_path: Path) -> Iterator[Workers]:
    server = Workers(
        tmp_path / "data",
        QATYSU_SERVER__HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        QATYSU_SERVER__MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _first_answer(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return b""


def test_two_workers_serve_one_port_and_aggregate_their_metrics(tmp_path: Path) -> None:
    server = Workers(tmp_path / "data")
    try:
        server.wait_ready()
        for _ in range(20):
            assert _get(server.url + "/api/v1/petitions")[0] == 200
        _, metrics = _get(server.url + "/metrics")
        listed = [
            line
            for line in metrics.splitlines()
            if line.startswith('qatysu_http_requests_total{method="GET",route="/api/v1/petitions"')
        ]
        # Whichever worker answers /metrics, it reports the requests both workers answered.
        assert listed == [
            'qatysu_http_requests_total{method="GET",route="/api/v1/petitions",status="200"} 20.0'
        ]
        assert len(list((tmp_path / "data" / "prometheus").glob("*.db"))) >= 2
    finally:
        server.stop()


def test_under_workers_a_slowloris_client_is_cut_by_the_head_timeout(
    guarded_workers: Workers,
) -> None:
    clients = [socket.create_connection(("127.0.0.1", guarded_workers.port)) for _ in range(3)]
    started = time.monotonic()
    try:
        for sock in clients:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # the head never ends
        answers = []
        for sock in clients:
            answer = b""
            while not answer:
                sock.sendall(b"X-Drip: 1\r\n")
                answer = _first_answer(sock, 0.2)
                assert time.monotonic() - started < 5 * HEADER_TIMEOUT, "not cut in time"
            answers.append(answer)
    finally:
        for sock in clients:
            sock.close()
    assert all(a.startswith(b"HTTP/1.1 408 Request Timeout") for a in answers), answers
    assert all(b"/problems/header-timeout" in a for a in answers)


def test_under_workers_connections_past_each_workers_cap_get_the_canned_503(
    guarded_workers: Workers,
) -> None:
    opened = 6 * MAX_CONNECTIONS
    clients = [socket.create_connection(("127.0.0.1", guarded_workers.port)) for _ in range(opened)]
    try:
        # Refused connections are answered at once; admitted ones wait for a head, then time out.
        answers = [_first_answer(sock, 4 * HEADER_TIMEOUT) for sock in clients]
    finally:
        for sock in clients:
            sock.close()
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503 Service Unavailable")]
    admitted = [a for a in answers if a.startswith(b"HTTP/1.1 408 Request Timeout")]
    assert len(refused) + len(admitted) == opened, answers
    assert all(b"/problems/connections" in a and b"Retry-After: 1" in a for a in refused)
    # Each worker admits up to its cap, however the kernel spread the connections.
    assert MAX_CONNECTIONS <= len(admitted) <= WORKERS * MAX_CONNECTIONS
    assert _get(guarded_workers.url + "/healthz")[0] == 200


def test_a_killed_worker_is_replaced_and_its_live_gauges_are_removed(
    guarded_workers: Workers,
) -> None:
    metrics_dir = guarded_workers.data_dir / "prometheus"
    victim = min(guarded_workers.worker_pids())
    assert list(metrics_dir.glob(f"gauge_livesum_{victim}.db"))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        # The replacement is serving once its event-loop probe has written its first value.
        replacements = guarded_workers.worker_pids() - {victim}
        serving = {pid for pid in replacements if list(metrics_dir.glob(f"gauge_*_{pid}.db"))}
        if len(serving) == WORKERS:
            break
        assert time.monotonic() < deadline, "the killed worker was not replaced"
        time.sleep(0.1)
    assert not list(metrics_dir.glob(f"gauge_livesum_{victim}.db"))
    assert list(metrics_dir.glob(f"counter_{victim}.db")), "its counts must stay in the totals"


def test_a_worker_serves_through_the_guarded_site_of_core_server() -> None:
    from core.host.gunicorn_worker import QatysuWorker
    from core.host.workers import QatysuGunicorn
    from core.settings import build_settings

    settings = build_settings({"server": {"workers": 2, "shutdown_timeout": 7.0}})
    app = QatysuGunicorn(settings)
    assert app.cfg.worker_class in {QatysuWorker, *QatysuWorker.__subclasses__()}
    # In-flight requests get shutdown_timeout, then the writer two commit timeouts (5 s each).
    assert app.cfg.graceful_timeout == 7 + 10 + 1


def test_the_metrics_directory_is_emptied_and_named_for_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Set here so that monkeypatch restores the process's own value after the test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "unset-by-the-test")
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_4242.db").write_bytes(b"a previous run's values")
    settings = build_settings({"server": {"data_dir": str(tmp_path)}})

    prepare_multiprocess_metrics(settings)

    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(directory)
    assert list(directory.iterdir()) == []
