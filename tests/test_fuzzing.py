"""The whole API fuzzed from its own OpenAPI document, against a live server on each database.

schemathesis reads ``/openapi.json`` and sends generated requests to every route: boundary
values of every field (the coverage phase: too long, too big, wrong type, NUL) and random
ones (the fuzzing phase). It runs once per identity: no token, and a token for each role.
Every check schemathesis has is on (``--checks all``), and zero failures is the bar, among them:

* ``not_a_server_error``: no 5xx; the demo data and an idle writer leave no cause for a 503;
* ``status_code_conformance``, ``content_type_conformance``, ``response_schema_conformance``,
  ``response_headers_conformance``: the answer is one the document declares, in its media
  type (every error ``application/problem+json``), shape and headers;
* ``positive_data_acceptance``: what the document says is valid is accepted, so every rule the
  server enforces is stated: registered codes are enums of the register, Idempotency-Key has
  its pattern, strings refuse NUL, a moderation decision's ground goes with its decision;
* ``negative_data_rejection``: what the document says is invalid is refused;
* ``unsupported_method``, ``allow_header_conformance``, ``missing_required_header`` and
  ``ignored_auth``. (The stateful phase, which follows OpenAPI links, is not run: the document
  declares none, and the demo data's ids are supplied instead.)

Values only the server can give (the demo data's ids, its cursors, fresh idempotency keys, the
view each role must name) and rules between fields that JSON Schema cannot state are supplied by
``tests/support/fuzzing_hooks.py``; ``tests/fuzzing.toml`` says why a 413 counts as a refusal.

The seed is fixed and the example budget small, so a run is reproducible and takes a minute or
two; each run prints how many cases it generated. Admission is off so that the requests reach
the handlers instead of the rate limiter.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.identity.tokens import mint_token
from plugins.kazakhstan.iin import synthetic_iin
from tests.support.services import PostgresServer, free_port

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
JWT_SECRET = "fuzzing-jwt-secret-long-enough-for-hs256-0123456789"
SEED = 20261201
MAX_EXAMPLES = 8
CONFIG = REPO_ROOT / "tests" / "fuzzing.toml"
HOOKS = "tests.support.fuzzing_hooks"
SUMMARY = re.compile(r"(\d+) generated, (\d+) passed")


def bearer(role: str) -> str:
    claims: dict[str, str] = {"name": "Fuzz Tester"}
    if role == "agency":
        claims["agency"] = "almaty-akimat"
    sub = synthetic_iin(7) if role == "citizen" else f"{role}-fuzz"
    return mint_token(JWT_SECRET.encode(), role=role, sub=sub, **claims)


# The roles that send the large bodies (citizens and agencies) get the boundary values too;
# without a token, or with an operator's (which no API route accepts), most routes answer
# 401/403 before reading input, and a moderator's bodies are two small enums and a reason.
IDENTITIES: dict[str, tuple[str | None, str]] = {
    "anonymous": (None, "fuzzing"),
    "citizen": ("citizen", "coverage,fuzzing"),
    "agency": ("agency", "coverage,fuzzing"),
    "moderator": ("moderator", "fuzzing"),
    "operator": ("operator", "fuzzing"),
}


@dataclass(frozen=True)
class FuzzRun:
    identity: str
    returncode: int
    generated: int
    passed: int
    output: str


@pytest.fixture(params=["sqlite", "postgresql"])
def live_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """``qatysu serve --demo`` on a fresh database of each kind; yields its base URL."""
    postgres: PostgresServer | None = None
    env = {k: v for k, v in os.environ.items() if not k.startswith("QATYSU_")}
    if request.param == "postgresql":
        # Asked for here, so that the SQLite case is not marked as needing PostgreSQL.
        postgres = request.getfixturevalue("postgres_server")
        env["QATYSU_DATABASE_URL"] = asyncio.run(postgres.create_database())
        env["QATYSU_DATABASE__MIGRATE_ON_START"] = "true"
    port = free_port()
    env.update(
        QATYSU_SERVER__DATA_DIR=str(tmp_path),
        QATYSU_JWT_SECRET=JWT_SECRET,
        QATYSU_IDENTITY__IIN_HASH_SECRET="fuzzing-iin-secret-long-enough-0123456789",
        QATYSU_SERVER__ACCESS_LOG="false",
        QATYSU_ADMISSION__ENABLED="false",
        # A live stream to a demo petition never ends by itself: each would hold its case until
        # schemathesis's request timeout. A short lifetime still answers with a whole stream.
        QATYSU_PETITIONS__LIVE_MAX_SECONDS="0.2",
    )
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "core.host.cli", "serve", "--demo", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process, log_path)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)
        if postgres is not None:
            asyncio.run(postgres.drop_all())
    # Every 500 is logged as an unhandled error, with its traceback.
    log_text = log_path.read_text(errors="replace")
    assert "unhandled error" not in log_text, log_text


def wait_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited:\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(base_url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"the server was not ready in 60 s:\n{log_path.read_text(errors='replace')}")


def fuzz(base_url: str, identity: str, report_dir: Path) -> FuzzRun:
    role, phases = IDENTITIES[identity]
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        phases,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
        "--report-dir",
        str(report_dir / identity),
    ]
    token = bearer(role) if role is not None else ""
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": HOOKS,
        "PYTHONPATH": str(REPO_ROOT),
        "QATYSU_FUZZ_BASE_URL": base_url,
        "QATYSU_FUZZ_TOKEN": token,
        "QATYSU_FUZZ_ROLE": role or "anonymous",
    }
    result = subprocess.run(
        command, cwd=report_dir, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    output = result.stdout + result.stderr
    summary = SUMMARY.search(output)
    generated, passed = (int(summary[1]), int(summary[2])) if summary else (0, 0)
    return FuzzRun(identity, result.returncode, generated, passed, output)


def test_every_route_answers_every_generated_input_as_documented(
    live_server: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    # Two identities at a time: schemathesis, not the server, is the bottleneck.
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda identity: fuzz(live_server, identity, tmp_path), IDENTITIES))
    with capsys.disabled():
        for run in runs:
            print(
                f"\nschemathesis on {request.node.callspec.params['live_server']} "
                f"as {run.identity}: "
                f"{run.generated} cases generated, {run.passed} passed (seed {SEED})"
            )
    for run in runs:
        assert run.returncode == 0, run.output
        assert run.generated > 0, run.output
        assert run.passed == run.generated, run.output
