"""``qatysu serve --workers 2``: two processes behind one port, metrics from both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import IIN_SECRET, JWT_SECRET, REPO_ROOT, free_port


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@pytest.mark.slow
def test_two_workers_serve_one_port_and_aggregate_their_metrics(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "QATYSU_SERVER__DATA_DIR": str(tmp_path),
        "QATYSU_JWT_SECRET": JWT_SECRET,
        "QATYSU_IDENTITY__IIN_HASH_SECRET": IIN_SECRET,
        "QATYSU_SERVER__ACCESS_LOG": "false",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"http://127.0.0.1:{port}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "the workers did not become ready"
            time.sleep(0.2)
        for _ in range(20):
            assert _get(f"http://127.0.0.1:{port}/api/v1/petitions")[0] == 200
        _, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        listed = [
            line
            for line in metrics.splitlines()
            if line.startswith('qatysu_http_requests_total{method="GET",route="/api/v1/petitions"')
        ]
        # Whichever worker answers /metrics, it reports the requests both workers answered.
        assert listed == [
            'qatysu_http_requests_total{method="GET",route="/api/v1/petitions",status="200"} 20.0'
        ]
        assert len(list((tmp_path / "prometheus").glob("*.db"))) >= 2
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
