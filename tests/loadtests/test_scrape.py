"""Counters before and after a step: parsing, deltas and refusals by layer."""

from __future__ import annotations

import threading
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loadtests.scrape import delta, fetch, parse_counters, parse_haproxy_csv, refusals_by_layer

EXPOSITION = """\
# HELP qatysu_admission_rejected_total Requests shed by admission.
# TYPE qatysu_admission_rejected_total counter
qatysu_admission_rejected_total{priority="normal",reason="edge"} 12.0
qatysu_admission_rejected_total{priority="critical",reason="queue_full"} 3.0
# HELP qatysu_admission_rejected_created Requests shed by admission.
# TYPE qatysu_admission_rejected_created gauge
qatysu_admission_rejected_created{priority="normal",reason="edge"} 1.7e+09
# HELP qatysu_ratelimit_limited_total Requests refused by a rate limit.
# TYPE qatysu_ratelimit_limited_total counter
qatysu_ratelimit_limited_total{policy="public-read"} 5.0
# HELP qatysu_admission_limit The adaptive concurrency limit.
# TYPE qatysu_admission_limit gauge
qatysu_admission_limit 64.0
# HELP process_cpu_seconds_total Total user and system CPU time.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 3.5
"""

HAPROXY_CSV = """\
# pxname,svname,qcur,qmax,scur,stot,hrsp_2xx,hrsp_4xx,hrsp_5xx,econ,eresp,
citizens,FRONTEND,,,4,900,700,0,200,,,
qatysu,qatysu,0,17,3,720,700,0,20,0,1,
qatysu,BACKEND,0,0,3,720,700,0,200,0,1,
"""


def test_only_the_projects_counters_are_kept() -> None:
    assert parse_counters(EXPOSITION) == {
        "qatysu_admission_rejected_total{priority=normal,reason=edge}": 12.0,
        "qatysu_admission_rejected_total{priority=critical,reason=queue_full}": 3.0,
        "qatysu_ratelimit_limited_total{policy=public-read}": 5.0,
    }


def test_haproxy_stats_fields_by_proxy_and_server() -> None:
    counters = parse_haproxy_csv(HAPROXY_CSV)
    assert counters["citizens/FRONTEND.hrsp_5xx"] == 200
    assert counters["qatysu/qatysu.hrsp_5xx"] == 20
    assert counters["qatysu/qatysu.qmax"] == 17
    assert "citizens/FRONTEND.econ" not in counters  # empty fields are not zeros


def test_delta_keeps_what_grew_including_new_series() -> None:
    before = {"a": 1.0, "b": 2.0}
    after = {"a": 1.0, "b": 5.0, "c": 4.0}
    assert delta(before, after) == {"b": 3.0, "c": 4.0}


def test_refusals_are_summed_by_layer() -> None:
    qatysu = {
        "qatysu_admission_rejected_total{priority=normal,reason=edge}": 10.0,
        "qatysu_admission_rejected_total{priority=sheddable,reason=edge}": 2.0,
        "qatysu_admission_rejected_total{priority=critical,reason=queue_full}": 3.0,
        "qatysu_ratelimit_limited_total{policy=public-read}": 5.0,
        "qatysu_http_requests_total{method=GET,route=/x,status=200}": 99.0,
    }
    haproxy = {"citizens/FRONTEND.hrsp_5xx": 200.0, "qatysu/qatysu.hrsp_5xx": 20.0}
    assert refusals_by_layer(qatysu, haproxy) == {
        "admission:edge": 12.0,
        "admission:queue_full": 3.0,
        "ratelimit": 5.0,
        "proxy:503": 180.0,
    }
    assert refusals_by_layer({}, {}) == {}


def test_fetch_asks_again_while_the_server_refuses() -> None:
    answers = iter([503, 503, 200])

    class Flaky(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = next(answers)
            body = b"ok" if status == 200 else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Flaky) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            assert fetch(f"http://127.0.0.1:{server.server_port}/metrics") == "ok"
        finally:
            server.shutdown()


def test_fetch_gives_up_on_other_errors_at_once() -> None:
    class Missing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Missing) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with pytest.raises(urllib.error.HTTPError):
                fetch(f"http://127.0.0.1:{server.server_port}/metrics")
        finally:
            server.shutdown()
