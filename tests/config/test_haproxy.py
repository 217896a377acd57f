"""The shipped HAProxy config parses, with its defaults and with the benchmark's values."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.services import service_unavailable

CONFIG = Path(__file__).resolve().parents[2] / "config" / "haproxy" / "haproxy.cfg"


def check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if shutil.which("haproxy") is None:
        service_unavailable("haproxy is not installed (apt-get install haproxy)")
    return subprocess.run(
        ["haproxy", "-c", "-f", str(CONFIG)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_the_config_is_valid_with_its_defaults() -> None:
    checked = check({})
    assert checked.returncode == 0, checked.stderr


def test_the_config_takes_its_addresses_and_limits_from_the_environment() -> None:
    checked = check({"QATYSU_BACKEND": "127.0.0.1:not-a-port"})
    assert checked.returncode != 0
    assert "'127.0.0.1:not-a-port'" in checked.stderr


@pytest.mark.parametrize(
    "directive",
    ["http-reuse always", "option forwardfor", "timeout queue", "maxqueue", "Retry-After"],
)
def test_the_config_keeps_what_the_deployment_relies_on(directive: str) -> None:
    assert directive in CONFIG.read_text()


def test_the_public_frontend_refuses_metrics() -> None:
    citizens = CONFIG.read_text().split("frontend citizens", 1)[1].split("\nbackend ", 1)[0]

    assert (
        "http-request deny deny_status 404 if { path /metrics } || { path_beg /metrics/ }"
        in citizens
    )
