"""The monitoring configuration in config/: Prometheus scrape config, alert rules, Grafana.

promtool validates the files and runs the rule unit tests; the dashboard is checked structurally
against the metrics the server really registers; and one slow test has a real Prometheus scrape a
real server and load the rules.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.host.app import create_app
from core.observability import keys as observability_keys
from core.observability.metrics import Metrics
from core.settings import build_settings
from tests.support.identities import IIN_SECRET, JWT_SECRET
from tests.support.services import REGISTER, free_port, service_unavailable

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = REPO_ROOT / "config"
DASHBOARD = CONFIG / "grafana" / "dashboards" / "qatysu.json"
PROVISIONED_UID = "prometheus"
MISSING_PROMETHEUS = "prometheus not installed: apt-get install prometheus"

EXPECTED_ROWS = [
    "Traffic", "Latency", "Admission", "Rate limits", "Writer", "Domain", "Process", "HAProxy",
    "Live counts",
]  # fmt: skip
# Panels choose their Prometheus through this variable; an import asks for DS_PROMETHEUS.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
EXPECTED_ALERTS = {
    "QatysuInstanceDown",
    "QatysuOverload",
    "QatysuErrorRatio",
    "QatysuLatencySLOFastBurn",
    "QatysuLatencySLOSlowBurn",
    "QatysuWriterLag",
    "QatysuEventLoopLag",
    "QatysuRateLimitBackendDown",
    "QatysuStorageUnavailable",
    "QatysuNotReady",
    "QatysuRedisDegraded",
    "QatysuCalendarRunsOut",
}
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
SEVERITIES = {"page", "warning", "ticket"}

# Grafana variables are not PromQL; these stand-ins make dashboard queries evaluable.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": ".*", "$instance": ".*"}

_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan",
}  # fmt: skip


# --- helpers --------------------------------------------------------------------------------


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        service_unavailable(MISSING_PROMETHEUS)
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def exposed_series() -> set[str]:
    """Every series name the server can expose with its built-in plugins (which declare metrics
    of their own), as Prometheus stores it."""
    settings = build_settings(
        {"identity": {"jwt_secret": JWT_SECRET, "iin_hash_secret": IIN_SECRET}, **REGISTER}
    )
    names: set[str] = set()
    for family in create_app(settings)[observability_keys.METRICS].registry.collect():
        # prometheus_client names a counter family without `_total` and a histogram family
        # without its suffixes; the stored series carry them.
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def referenced_series(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers that are not functions, keywords,
    label names or values, durations or grouping labels."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue
        if match.group().lower() in _PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        # Collapsed rows carry their panels inside.
        yield from all_panels(panel.get("panels", []))


def query_panels() -> list[dict[str, Any]]:
    return [p for p in all_panels(dashboard()["panels"]) if p["type"] != "row"]


def dashboard_exprs() -> list[str]:
    exprs = [t["expr"] for panel in query_panels() for t in panel["targets"]]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "datasource":
            continue  # its query is a plugin type, not PromQL
        query = variable.get("query")
        exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def as_promql(expr: str) -> str:
    """The dashboard expression with Grafana's variables replaced; label_values() is Grafana's
    own function, so it becomes the selector it lists values from."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    label_values = re.fullmatch(r"label_values\((.+),\s*\w+\)", expr)
    return label_values.group(1) if label_values else expr


# --- promtool -------------------------------------------------------------------------------


def test_prometheus_config_passes_promtool_check() -> None:
    result = run_promtool("check", "config", str(CONFIG / "prometheus.yml"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_alert_rules_pass_promtool_check() -> None:
    result = run_promtool("check", "rules", str(CONFIG / "alerts.yml"))

    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass_in_promtool() -> None:
    result = run_promtool("test", "rules", str(CONFIG / "alerts_test.yml"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rule_unit_tests_cover_each_required_alert_firing_and_silent() -> None:
    text = (CONFIG / "alerts_test.yml").read_text(encoding="utf-8")
    # promtool pairs each alertname with the exp_alerts that follow it; an empty list is a
    # "stays silent" case, a list with exp_labels a "fires" case.
    cases = re.findall(r"alertname: (\w+)\n\s+exp_alerts:( \[\])?", text)
    fires = {name for name, empty in cases if not empty}
    silent = {name for name, empty in cases if empty}
    required = {
        "QatysuOverload",
        "QatysuErrorRatio",
        "QatysuLatencySLOFastBurn",
        "QatysuWriterLag",
        "QatysuInstanceDown",
        "QatysuStorageUnavailable",
        "QatysuNotReady",
        "QatysuRedisDegraded",
        "QatysuCalendarRunsOut",
    }

    assert required <= fires
    assert required <= silent


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    # promtool has no bare expression checker, so each query becomes a recording rule.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": as_promql(expr)}
                    for i, expr in enumerate(dashboard_exprs())
                ],
            }
        ]
    }
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(json.dumps(rules), encoding="utf-8")  # JSON is YAML

    result = run_promtool("check", "rules", str(rule_file))

    assert result.returncode == 0, result.stdout + result.stderr


# --- metric names ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _single_process_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    # In multiprocess mode Metrics() drops the process_* collector, which the dashboard uses.
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def test_reference_extraction_finds_metrics_and_skips_functions_labels_and_variables() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (route, le) (rate(qatysu_http_request_duration_seconds"
        '_bucket{route!~"/healthz",job=~"$job"}[$__rate_interval]))) / on (job) group_left '
        "sum without (instance) (up offset 5m) > bool 1e3"
    )

    assert referenced_series(expr) == {"qatysu_http_request_duration_seconds_bucket", "up"}


def test_dashboard_queries_reference_only_metrics_the_server_or_haproxy_exposes() -> None:
    exposed = exposed_series()
    referenced = set().union(*(referenced_series(as_promql(e)) for e in dashboard_exprs()))
    # HAProxy's exporter names are checked against a running HAProxy in tests/deploy.
    from_haproxy = {name for name in referenced if name.startswith("haproxy_")}

    assert referenced, "no metric names found in the dashboard"
    assert from_haproxy
    assert referenced - exposed == from_haproxy


def test_dashboard_queries_match_the_qatysu_name_pattern_only_for_exposed_metrics() -> None:
    # The plain textual check as well, so a name hidden from the tokenizer cannot slip through.
    suffix = re.compile(r"_(bucket|sum|count)$")
    exposed_bases = {suffix.sub("", name) for name in exposed_series()}
    text = "\n".join(dashboard_exprs())
    found = {suffix.sub("", name) for name in re.findall(r"qatysu_[a-z_]+", text)}

    assert found - exposed_bases == set()


def test_dashboard_shows_every_qatysu_metric_the_server_exposes() -> None:
    suffix = re.compile(r"_(bucket|sum|count)$")
    qatysu_bases = {suffix.sub("", n) for n in exposed_series() if n.startswith("qatysu_")}
    text = "\n".join(dashboard_exprs())

    assert {name for name in qatysu_bases if name not in text} == set()


def test_alert_rules_reference_only_metrics_the_server_exposes() -> None:
    text = (CONFIG / "alerts.yml").read_text(encoding="utf-8")
    exprs = re.findall(r"^\s+expr: (?:\|\n((?:\s{10}.*\n)+)|(.+)$)", text, flags=re.MULTILINE)
    assert len(exprs) == 21
    # Recording-rule names (level:metric:operation) are outputs of the rules themselves.
    recorded = set(re.findall(r"^\s+- record: (\S+)$", text, flags=re.MULTILINE))
    referenced = set().union(*(referenced_series(block + line) for block, line in exprs))

    assert referenced - exposed_series() - recorded == {"up"}


def test_every_alert_links_to_its_own_section_of_the_runbook() -> None:
    rules = [
        rule
        for group in yaml.safe_load((CONFIG / "alerts.yml").read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    # GitHub's anchor for a heading "## Name" is its lower-cased text.
    headings = re.findall(r"^## (\w+)$", RUNBOOK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    anchors = {f"docs/runbook.md#{heading.lower()}" for heading in headings}

    assert {rule["alert"] for rule in rules} == EXPECTED_ALERTS
    for rule in rules:
        assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{rule['alert'].lower()}"
        assert rule["annotations"]["runbook_url"] in anchors, rule["alert"]


def test_latency_histogram_has_the_exact_slo_bucket_the_alerts_use() -> None:
    metrics = Metrics()
    metrics.http_duration.labels("/api/v1/petitions/{id}", "GET").observe(0.2)
    bounds = {
        sample.labels["le"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "qatysu_http_request_duration_seconds_bucket"
    }

    assert "0.25" in bounds
    assert 'le="0.25"' in (CONFIG / "alerts.yml").read_text(encoding="utf-8")


# --- dashboard structure --------------------------------------------------------------------


def test_dashboard_has_uid_qatysu_and_a_current_schema() -> None:
    board = dashboard()

    assert board["uid"] == "qatysu"
    assert board["schemaVersion"] >= 38
    assert board["title"] == "Qatysu"


def test_dashboard_declares_its_prometheus_as_an_import_input_and_a_datasource_variable() -> None:
    board = dashboard()
    [variable] = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    text = DASHBOARD.read_text(encoding="utf-8")

    assert [(i["name"], i["type"], i["pluginId"]) for i in board["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]
    assert (variable["name"], variable["query"]) == ("datasource", "prometheus")
    # On import the input fills the variable's default; provisioned, Grafana picks its default
    # Prometheus. Nothing else names a datasource uid.
    assert variable["current"]["value"] == "${DS_PROMETHEUS}"
    assert text.count("${DS_PROMETHEUS}") == 1
    assert board["templating"]["list"][0] is variable


def test_dashboard_rows_are_traffic_latency_admission_ratelimits_writer_domain_process() -> None:
    rows = [p["title"] for p in all_panels(dashboard()["panels"]) if p["type"] == "row"]

    assert rows == EXPECTED_ROWS


def test_every_dashboard_panel_queries_the_datasource_variable() -> None:
    panels = query_panels()

    assert panels
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "datasource":
            assert variable["datasource"] == DATASOURCE, variable["name"]
    assert '"uid": "prometheus"' not in DASHBOARD.read_text(encoding="utf-8")


def test_latency_panels_break_down_by_route_and_method() -> None:
    latency = [p for p in query_panels() if p["title"].startswith(("p50 latency", "p99 latency"))]

    assert len(latency) == 2
    for panel in latency:
        [target] = panel["targets"]
        assert "sum by (route, method, le)" in target["expr"]
        assert target["legendFormat"] == "{{method}} {{route}}"


def test_process_panels_draw_one_line_per_worker_process() -> None:
    process = [p for p in query_panels() if "process_" in p["targets"][0]["expr"]]

    assert len(process) == 3
    for panel in process:
        for target in panel["targets"]:
            assert "{{pid}}" in target["legendFormat"], panel["title"]


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = list(all_panels(dashboard()["panels"]))
    ids = [p["id"] for p in panels]
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]

    assert len(ids) == len(set(ids))


def test_latency_panels_draw_the_slo_line_at_a_quarter_second() -> None:
    latency = [p for p in query_panels() if p["title"].startswith(("p50 latency", "p99 latency"))]

    assert len(latency) == 2
    for panel in latency:
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"
        assert [s["value"] for s in defaults["thresholds"]["steps"]] == [None, 0.25]
        assert all("histogram_quantile" in t["expr"] for t in panel["targets"])


def test_grafana_provisioning_declares_a_default_prometheus_for_the_datasource_variable() -> None:
    datasources = (CONFIG / "grafana/provisioning/datasources/prometheus.yml").read_text("utf-8")
    providers = (CONFIG / "grafana/provisioning/dashboards/qatysu.yml").read_text("utf-8")

    assert re.search(rf"^\s+uid: {PROVISIONED_UID}$", datasources, flags=re.MULTILINE)
    assert re.search(r"^\s+isDefault: true$", datasources, flags=re.MULTILINE)
    assert re.search(r"^\s+type: prometheus$", datasources, flags=re.MULTILINE)
    assert re.search(r"^\s+type: file$", providers, flags=re.MULTILINE)


# --- container image ------------------------------------------------------------------------


def test_dockerfile_copies_only_paths_that_exist_in_the_repository() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    sources = [
        source.rstrip("/")
        for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, flags=re.MULTILINE)
        for source in line.split()[:-1]
    ]

    assert sorted(sources) == [
        "README.md",
        "config",
        "core",
        "plugins",
        "pyproject.toml",
        "uv.lock",
    ]
    assert [s for s in sources if not (REPO_ROOT / s).exists()] == []


def test_dockerfile_runs_as_non_root_and_health_checks_healthz() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")

    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, flags=re.MULTILINE)
    # A numeric user (the uid and gid useradd creates) lets a runtime verify it is not root.
    assert re.search(r"^USER 10001:10001$", dockerfile, flags=re.MULTILINE)
    assert "--uid 10001 --gid qatysu" in dockerfile
    assert "--gid 10001 qatysu" in dockerfile
    assert re.search(r"^HEALTHCHECK .*urllib.*/healthz", dockerfile, flags=re.MULTILINE | re.DOTALL)
    assert 'CMD ["qatysu", "serve", "--host", "0.0.0.0"]' in dockerfile


# --- a real Prometheus scraping a real server -----------------------------------------------


@dataclass
class Service:
    """A subprocess under test: where it listens, where it logs."""

    name: str
    address: str
    log: Path
    process: subprocess.Popen[bytes]


def spawn(name: str, argv: list[str], address: str, log: Path, **popen: Any) -> Service:
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, **popen)
    return Service(name, address, log, process)


def stop(service: Service) -> None:
    # SIGTERM first: the server drains gracefully and Prometheus closes its TSDB cleanly.
    process = service.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def prometheus_api(base: str, path: str, **params: str) -> Any:
    status, body = http_get(f"{base}{path}?{urllib.parse.urlencode(params)}")
    payload = json.loads(body)
    assert status == 200, payload
    return payload["data"]


def wait_for(
    description: str, check: Callable[[], Any], services: list[Service], timeout: float = 30
) -> Any:
    """Poll `check` until it returns something truthy; fail with the logs on timeout, or at
    once if a service has exited."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if any(s.process.poll() is not None for s in services):
            break
        try:
            result = check()
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            last_error = exc
        else:
            if result:
                return result
        time.sleep(0.25)
    logs = "\n".join(
        f"--- {s.name} (exit code {s.process.poll()}) ---\n"
        f"{s.log.read_text(errors='replace')[-4000:]}"
        for s in services
    )
    pytest.fail(f"gave up waiting for {description} (last error: {last_error!r})\n{logs}")


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in reversed(started):
            stop(service)


def start_qatysu(tmp_path: Path) -> Service:
    port = free_port()
    env = {
        **os.environ,
        "QATYSU_SERVER__DATA_DIR": str(tmp_path / "data"),
        "QATYSU_JWT_SECRET": JWT_SECRET,
        "QATYSU_IIN_HASH_SECRET": IIN_SECRET,
    }
    # One process, so /metrics comes from the app's own registry.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    argv = [sys.executable, "-m", "core.host.cli", "serve", "--port", str(port)]
    return spawn(
        "qatysu", argv, f"127.0.0.1:{port}", tmp_path / "qatysu.log", cwd=REPO_ROOT, env=env
    )


def start_prometheus(prometheus: str, tmp_path: Path, target: str) -> Service:
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(CONFIG / "alerts.yml")],
        "scrape_configs": [{"job_name": "qatysu", "static_configs": [{"targets": [target]}]}],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    argv = [
        prometheus,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return spawn(
        "prometheus", argv, f"http://127.0.0.1:{port}", tmp_path / "prometheus.log", cwd=tmp_path
    )


@pytest.mark.slow
def test_real_prometheus_scrapes_a_real_server_and_loads_the_rules_healthy(
    tmp_path: Path, services: list[Service]
) -> None:
    # Resolved first: without Prometheus the test skips before starting the server.
    prometheus_binary = binary("prometheus")
    qatysu = start_qatysu(tmp_path)
    services.append(qatysu)

    def healthy() -> bool:
        return http_get(f"http://{qatysu.address}/healthz")[0] == 200

    wait_for("the server's /healthz", healthy, services, timeout=40)
    for path in ("/healthz", "/readyz", "/openapi.json", "/metrics", "/no-such-route"):
        http_get(f"http://{qatysu.address}{path}")

    prometheus = start_prometheus(prometheus_binary, tmp_path, qatysu.address)
    services.append(prometheus)
    api = prometheus.address

    def target_up() -> bool:
        result = prometheus_api(api, "/api/v1/query", query='up{job="qatysu"}')["result"]
        return len(result) == 1 and result[0]["value"][1] == "1"

    def requests_scraped() -> list[dict[str, Any]]:
        query = 'qatysu_http_requests_total{job="qatysu"}'
        result: list[dict[str, Any]] = prometheus_api(api, "/api/v1/query", query=query)["result"]
        return result

    def rules_evaluated() -> list[dict[str, Any]]:
        groups = prometheus_api(api, "/api/v1/rules")["groups"]
        rules: list[dict[str, Any]] = [rule for group in groups for rule in group["rules"]]
        # Health stays "unknown" until a rule's first evaluation.
        return rules if rules and all(r["health"] != "unknown" for r in rules) else []

    wait_for('up{job="qatysu"} == 1', target_up, services)
    series = wait_for("qatysu_http_requests_total", requests_scraped, services)
    rules = wait_for("the rules to be evaluated", rules_evaluated, services)

    assert {s["metric"]["route"] for s in series} >= {"/healthz", "/openapi.json"}
    unhealthy = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert unhealthy == []
    alerts = [r for r in rules if r["type"] == "alerting"]
    assert {r["name"] for r in alerts} == EXPECTED_ALERTS
    for alert in alerts:
        assert alert["labels"]["severity"] in SEVERITIES, alert["name"]
        assert alert["annotations"]["summary"], alert["name"]
        assert alert["annotations"]["description"], alert["name"]
    # Every dashboard query evaluates against the live data without an error.
    for expr in dashboard_exprs():
        assert prometheus_api(api, "/api/v1/query", query=as_promql(expr)) is not None
