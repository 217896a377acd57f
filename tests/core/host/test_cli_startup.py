"""Start-up truth: a database that does not answer, a bad database URL and a busy port each end
``qatysu serve`` and ``qatysu migrate`` with one clear line and a non-zero exit, no traceback.

``migrate`` runs in-process through ``core.host.cli.main``; ``serve`` runs as a subprocess, as an
operator runs it (it installs uvloop's event loop policy, which must not leak into other tests).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.host.cli import main
from tests.support.identities import IIN_SECRET, JWT_SECRET
from tests.support.services import REPO_ROOT

# Nothing listens on port 1 of the loopback: a connection there is refused at once.
UNREACHABLE = "postgresql://qatysu:secret-password@127.0.0.1:1/nowhere"
SHOWN = "postgresql://qatysu:***@127.0.0.1:1/nowhere"
REFUSED = f"qatysu: cannot reach the database at {SHOWN}: ConnectionRefusedError: "
BAD_PORT = "postgresql://qatysu@127.0.0.1:notaport/qatysu"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("QATYSU_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QATYSU_DATABASE__STARTUP_WAIT", "0")


def test_migrate_on_an_unreachable_database_exits_1_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["migrate", "--database-url", UNREACHABLE])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    [line] = err.splitlines()
    assert line.startswith(REFUSED)
    assert "secret-password" not in err


def test_migrate_waits_for_the_database_and_warns_once_while_it_does(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("QATYSU_DATABASE__STARTUP_WAIT", "1.2")
    code = main(["migrate", "--database-url", UNREACHABLE])
    assert code == 1
    assert capsys.readouterr().err.startswith(REFUSED)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"the database at {SHOWN} does not answer (")
    assert warnings[0].endswith("); waiting up to 1.2 s for it")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (BAD_PORT, f"database.url {BAD_PORT!r} is not a database URL"),
        (
            "postgresql://qatysu@127.0.0.1:70000/qatysu",
            "database.url: port 70000 is not between 1 and 65535",
        ),
    ],
)
def test_migrate_with_a_bad_database_url_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    code = main(["migrate", "--database-url", url])
    assert (code, capsys.readouterr().err) == (2, f"qatysu: {message}\n")


def test_migrate_into_a_directory_that_cannot_be_made_exits_1_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    code = main(["migrate", "--database-url", f"sqlite:///{tmp_path}/a-file/var/qatysu.db"])
    assert (code, capsys.readouterr().err) == (
        1,
        f"qatysu: cannot create {tmp_path}/a-file/var for the SQLite database: Not a directory\n",
    )


# --- qatysu serve, as a subprocess --------------------------------------------------------------


def serve(tmp_path: Path, *args: str, wait: float = 0) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QATYSU_")}
    environment.update(
        QATYSU_JWT_SECRET=JWT_SECRET,
        QATYSU_IIN_HASH_SECRET=IIN_SECRET,
        QATYSU_SERVER__DATA_DIR=str(tmp_path / "var"),
        QATYSU_DATABASE__STARTUP_WAIT=str(wait),
    )
    return subprocess.run(
        [sys.executable, "-m", "core.host.cli", "serve", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], code: int, line: str) -> None:
    assert result.returncode == code
    assert "serving" not in result.stdout
    assert "Traceback" not in result.stderr
    assert "writer stopped unexpectedly" not in result.stderr
    assert [text for text in result.stderr.splitlines() if text.startswith("qatysu: ")] == [line]


@pytest.mark.slow
def test_serve_on_a_busy_port_exits_1_with_one_line_and_no_false_writer_error(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path, "--port", str(port))
    assert_one_clear_line(
        result,
        1,
        f"qatysu: cannot listen on http://127.0.0.1:{port}: Address already in use "
        "(another server on this port? choose one with --port)",
    )


@pytest.mark.slow
def test_serve_on_an_unreachable_database_warns_once_then_exits_1_with_one_line(
    tmp_path: Path,
) -> None:
    result = serve(tmp_path, "--port", "0", "--database-url", UNREACHABLE, wait=1.2)
    [line] = [text for text in result.stderr.splitlines() if text.startswith("qatysu: ")]
    assert_one_clear_line(result, 1, line)
    assert line.startswith(REFUSED)
    warned = [text for text in result.stderr.splitlines() if "does not answer" in text]
    assert len(warned) == 1
    assert "secret-password" not in result.stderr


@pytest.mark.slow
def test_serve_with_a_bad_database_url_exits_2_with_one_line(tmp_path: Path) -> None:
    result = serve(tmp_path, "--port", "0", "--database-url", BAD_PORT)
    assert_one_clear_line(result, 2, f"qatysu: database.url {BAD_PORT!r} is not a database URL")
