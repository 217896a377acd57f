"""``qatysu new-channel``: the generated channel installs through its entry point, is served by
the whole app, passes its own tests, and is as clean as core."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.host.cli import main
from core.host.scaffold import ScaffoldError, new_channel
from tests.support.services import REPO_ROOT

BIN = Path(sys.executable).parent
NAME = "civic_notes"


def uv() -> str:
    found = shutil.which("uv") or str(REPO_ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv is missing: `make test` installs it under .tools/"
    return found


def install(package: Path, site: Path) -> None:
    """Install as pip would, into ``site``: built from its pyproject, with its entry points."""
    subprocess.run(
        [
            *(uv(), "pip", "install", "--quiet", "--python", sys.executable, "--offline"),
            *("--no-deps", "--no-build-isolation", "--target", str(site), str(package)),
        ],
        check=True,
        timeout=120,
    )


def run_its_tests(tests: Path, cwd: Path, pythonpath: str) -> subprocess.CompletedProcess[str]:
    # Not `python -m pytest`, which would put the working directory on sys.path.
    environ = {**os.environ, "PYTHONPATH": pythonpath}
    return subprocess.run(
        [str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", str(tests)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_tests(package: Path, run: Path) -> Path:
    """The package's tests and their pytest settings, away from its source."""
    shutil.copytree(package / "tests", run / "tests")
    shutil.copy(package / "pyproject.toml", run / "pyproject.toml")
    return run


@pytest.mark.slow
def test_the_generated_channel_installed_through_its_entry_point_passes_its_tests(
    tmp_path: Path,
) -> None:
    package = new_channel(NAME, tmp_path / "src")
    install(package, tmp_path / "site")
    elsewhere = copy_tests(package, tmp_path / "run")
    done = run_its_tests(elsewhere / "tests", elsewhere, str(tmp_path / "site"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


@pytest.mark.slow
def test_the_generated_tests_fail_while_the_channel_is_not_installed(tmp_path: Path) -> None:
    package = new_channel(NAME, tmp_path / "src")
    elsewhere = copy_tests(package, tmp_path / "run")
    # Importable, but declared through no entry point: the app must not serve it.
    done = run_its_tests(elsewhere / "tests", elsewhere, str(package))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "4 failed" in done.stdout


@pytest.mark.slow
def test_the_generated_channel_passes_ruff_and_strict_mypy(tmp_path: Path) -> None:
    package = new_channel(NAME, tmp_path)
    for command in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        done = subprocess.run(
            [str(BIN / command[0]), *command[1:]], cwd=package, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    typed = subprocess.run(
        [str(BIN / "mypy"), "--python-executable", sys.executable, f"qatysu_{NAME}", "tests"],
        cwd=package,
        env={**os.environ, "MYPYPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert typed.returncode == 0, typed.stdout + typed.stderr


def test_the_generated_channel_imports_core_only_through_the_sdk_and_the_test_kit(
    tmp_path: Path,
) -> None:
    package = new_channel(NAME, tmp_path)
    imported = {
        line.split()[1]
        for path in package.rglob("*.py")
        for line in path.read_text().splitlines()
        if line.startswith(("from core", "import core"))
    }
    assert imported == {"core.sdk", "core.testing"}


def test_the_channel_s_names_follow_its_name(tmp_path: Path) -> None:
    package = new_channel(NAME, tmp_path)
    assert package == tmp_path / "qatysu-civic-notes"
    pyproject = (package / "pyproject.toml").read_text()
    assert 'civic_notes = "qatysu_civic_notes:plugin"' in pyproject
    assert (
        'Routes("/api/v1/civic-notes"' in (package / "qatysu_civic_notes/handlers.py").read_text()
    )
    assert "class CivicNotesSettings" in (package / "qatysu_civic_notes/settings.py").read_text()
    assert (package / "tests" / "test_civic_notes.py").exists()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Notes", "is not a channel name"),
        ("9notes", "is not a channel name"),
        ("notes-board", "is not a channel name"),
        ("n", "is not a channel name"),
        ("server", "is a section of core's settings"),
        ("petitions", "is the name of an installed plugin"),
    ],
)
def test_a_bad_name_is_refused_with_the_reason(tmp_path: Path, name: str, reason: str) -> None:
    with pytest.raises(ScaffoldError, match=reason):
        new_channel(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "qatysu-civic-notes").mkdir()
    assert main(["new-channel", NAME, "--into", str(tmp_path)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert list((tmp_path / "qatysu-civic-notes").iterdir()) == []


def test_the_command_writes_the_package_and_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-channel", NAME, "--into", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"wrote {tmp_path / 'qatysu-civic-notes'}"
    assert "pip install -e" in out
