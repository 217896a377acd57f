"""Logs: one JSON object per line when asked, gunicorn's own lines included."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.host.logs import JsonFormatter, configure_logging
from core.host.workers import GunicornLogger, QatysuGunicorn
from core.settings import build_settings
from tests.support.services import free_port, spawn_server


def test_a_json_line_carries_the_traceback_of_a_logged_exception() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.LogRecord(
            "qatysu", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info()
        )

    entry = json.loads(JsonFormatter().format(record))

    assert (entry["level"], entry["message"]) == ("error", "failed x")
    assert entry["exception"].startswith("Traceback")
    assert entry["exception"].endswith("ValueError: bad value")


def test_configuring_again_replaces_the_handler_instead_of_adding_one() -> None:
    root = logging.getLogger()
    root.handlers.clear()

    configure_logging("info", "text")
    configure_logging("debug", "json")

    assert len(root.handlers) == 1
    assert isinstance(root.handlers[0].formatter, JsonFormatter)
    assert root.level == logging.DEBUG


def test_gunicorns_lines_go_through_the_root_logger_at_the_configured_level() -> None:
    settings = build_settings({"server": {"workers": 2}, "logging": {"level": "warning"}})
    cfg = QatysuGunicorn(settings).cfg

    logger = GunicornLogger(cfg)

    assert cfg.logger_class is GunicornLogger
    assert logger.error_log.handlers == []
    assert logger.error_log.propagate is True
    assert logger.error_log.level == logging.WARNING


@pytest.mark.slow
def test_under_workers_every_line_written_is_json(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    process = spawn_server(
        port=port,
        workers=2,
        data_dir=tmp_path / "data",
        log_path=log,
        env={"QATYSU_LOGGING__FORMAT": "json"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    loggers = {entry["logger"] for entry in entries}
    # gunicorn's boot lines and the server's own (the SQLite warning) alike.
    assert {"gunicorn.error", "qatysu"} <= loggers
    assert any("Booting worker" in entry["message"] for entry in entries)
