"""Every way the project is installed takes uv.lock, and the lock agrees with pyproject.toml.

A fresh clone next year must install what CI tested today: `make run`, `make test`, `.ci/run` and
the Dockerfile all go through `uv sync --locked`, with one pinned uv.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (REPO_ROOT / "Makefile").read_text()
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def _make_variable(name: str) -> str:
    match = re.search(rf"^{name}\s*:?=\s*(\S+)\s*$", MAKEFILE, re.MULTILINE)
    assert match is not None, f"the Makefile sets no {name}"
    return match.group(1)


def _recipe(target: str) -> str:
    match = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", MAKEFILE, re.MULTILINE)
    assert match is not None, f"the Makefile has no recipe for {target}"
    return match.group(1)


def test_the_makefile_installs_both_sets_from_the_lock_and_refuses_a_stale_one() -> None:
    run_recipe = _recipe("$(STAMP_RUN)")
    dev_recipe = _recipe("$(STAMP_DEV)")
    for recipe in (run_recipe, dev_recipe):
        assert "sync" in recipe
        assert "--locked" in recipe
    assert "--extra dev" in dev_recipe
    assert "pip install" not in run_recipe + dev_recipe


def test_the_stamps_are_rebuilt_when_the_lock_changes() -> None:
    for stamp in ("$(STAMP_RUN)", "$(STAMP_DEV)"):
        line = next(line for line in MAKEFILE.splitlines() if line.startswith(f"{stamp}:"))
        assert "uv.lock" in line, f"{stamp} does not depend on uv.lock"


def test_the_dockerfile_installs_from_the_lock_with_the_makefiles_uv() -> None:
    assert re.search(r"^COPY [^\n]*\buv\.lock\b", DOCKERFILE, re.MULTILINE)
    syncs = re.findall(r"uv sync ([^\n]*)", DOCKERFILE)
    assert syncs, "the Dockerfile never runs uv sync"
    assert all("--locked" in flags for flags in syncs)
    assert not re.search(r"pip install[^\n]*\s\.(\s|$)", DOCKERFILE), "the project is pip-installed"
    match = re.search(r"^ARG UV_VERSION=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert match is not None
    assert match.group(1) == _make_variable("UV_VERSION")


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    assert "make test" in readme


def test_every_dependency_whose_internals_the_code_reads_has_an_upper_bound() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    bounded = {
        re.split(r"[<>=!\[; ]", spec, maxsplit=1)[0]: spec for spec in project["dependencies"]
    }
    for name in ("aiohttp", "uvloop", "redis", "sqlalchemy"):
        assert "<" in bounded[name], f"{name} has no upper bound: {bounded[name]}"


def test_the_lock_is_current_with_pyproject() -> None:
    uv = shutil.which("uv") or str(REPO_ROOT / ".tools" / "bin" / "uv")
    assert Path(uv).exists(), "uv is missing: `make test` installs it under .tools/"
    result = subprocess.run(
        [uv, "lock", "--check", "--offline", "--python", sys.executable],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
