"""The shipped proxy, running: /metrics is refused on the public frontend, every request is
logged, and the stats frontend's exporter serves the HAProxy series the dashboard draws."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.services import REPO_ROOT, free_port, service_unavailable

pytestmark = pytest.mark.slow

DASHBOARD = REPO_ROOT / "config" / "grafana" / "dashboards" / "qatysu.json"


@dataclass
class Backend:
    """An instance stand-in that answers 200 to everything and remembers the paths it saw."""

    server: ThreadingHTTPServer
    seen: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


def start_backend() -> Backend:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = b'{"status": "ready"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Backend(server, seen)


@dataclass
class Proxy:
    public: str
    stats: str
    log: Path
    backends: list[Backend]


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        service_unavailable("haproxy not installed: apt-get install haproxy")
    backends = [start_backend(), start_backend()]
    public, stats = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "QATYSU_HAPROXY_BIND": public,
        "QATYSU_HAPROXY_STATS": stats,
        "QATYSU_BACKEND_1": backends[0].address,
        "QATYSU_BACKEND_2": backends[1].address,
    }
    log = tmp_path / "haproxy.log"
    try:
        with log.open("wb") as output:
            process = subprocess.Popen(
                [haproxy, "-db", "-f", str(REPO_ROOT / "deploy" / "haproxy.cfg")],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 20
            while get(f"http://{public}/readyz")[0] != 200:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            yield Proxy(f"http://{public}", f"http://{stats}", log, backends)
        finally:
            process.terminate()
            process.wait(timeout=10)
    finally:
        for backend in backends:
            backend.server.shutdown()
            backend.server.server_close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()
    except OSError:
        return 0, ""


def haproxy_series_in_the_dashboard() -> set[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs: list[str] = []

    def walk(panels: list[dict[str, object]]) -> None:
        for panel in panels:
            exprs.extend(t["expr"] for t in panel.get("targets", []))  # type: ignore[attr-defined]
            walk(panel.get("panels", []))  # type: ignore[arg-type]

    walk(board["panels"])
    return set(re.findall(r"\bhaproxy_\w+", "\n".join(exprs)))


def test_the_public_frontend_refuses_metrics_and_passes_everything_else(proxy: Proxy) -> None:
    answers = {path: get(proxy.public + path)[0] for path in ("/metrics", "/metrics/", "/api/v1")}

    assert answers == {"/metrics": 404, "/metrics/": 404, "/api/v1": 200}
    seen = [path for backend in proxy.backends for path in backend.seen]
    assert "/api/v1" in seen
    assert [path for path in seen if path.startswith("/metrics")] == []


def test_each_request_is_logged_with_its_status(proxy: Proxy) -> None:
    get(proxy.public + "/api/v1/petitions?logged=1")
    get(proxy.public + "/metrics")
    time.sleep(0.5)

    lines = proxy.log.read_text().splitlines()
    assert any(
        " citizens qatysu/qatysu-" in line
        and " 200 " in line
        and "/api/v1/petitions?logged=1" in line
        for line in lines
    ), lines
    assert any(" 404 " in line and "GET /metrics HTTP/1.1" in line for line in lines), lines


def test_the_stats_frontend_exports_every_haproxy_series_the_dashboard_draws(
    proxy: Proxy,
) -> None:
    get(proxy.public + "/api/v1")
    status, text = get(proxy.stats + "/metrics")
    exported = set(re.findall(r"^(haproxy_\w+)[{ ]", text, flags=re.MULTILINE))
    drawn = haproxy_series_in_the_dashboard()

    assert status == 200
    assert len(drawn) >= 4
    assert drawn - exported == set()
