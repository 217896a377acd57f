"""The servers of this machine: where PostgreSQL and Redis are, free ports, ``qatysu serve``.

A missing service or tool skips its tests with the reason, unless ``QATYSU_REQUIRE_SERVICES=1``
(CI), where it fails them instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from core.settings import Settings
from tests.support.identities import IIN_SECRET, JWT_SECRET

POSTGRES_ADMIN_DSN = os.environ.get(
    "QATYSU_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("QATYSU_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("QATYSU_REQUIRE_SERVICES") == "1"
REPO_ROOT = Path(__file__).resolve().parents[2]
# The types of the make_settings and make_client fixtures.
SettingsFactory = Callable[..., Settings]
ClientFactory = Callable[..., Any]
# Tests address the shipped agency register, so it is exercised as it is configured.
SHIPPED_CONFIG = tomllib.loads((REPO_ROOT / "config" / "default.toml").read_text())
SHIPPED_REGISTER = {
    "agencies": SHIPPED_CONFIG["kazakhstan"]["agencies"],
    "regions": SHIPPED_CONFIG["kazakhstan"]["regions"],
}
REGISTER = {"kazakhstan": SHIPPED_REGISTER}


def service_unavailable(reason: str) -> NoReturn:
    """Skip for a missing service, or fail where services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (QATYSU_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn_server(
    *,
    port: int,
    workers: int,
    data_dir: Path,
    log_path: Path,
    jwt_secret: str = JWT_SECRET,
    iin_secret: str = IIN_SECRET,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``qatysu serve`` in its own process group (so all its workers can be killed at once),
    with explicit secrets and no inherited ``QATYSU_*`` setting; its output goes to a file."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QATYSU_")}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environment.update(
        QATYSU_SERVER__DATA_DIR=str(data_dir),
        QATYSU_JWT_SECRET=jwt_secret,
        QATYSU_IDENTITY__IIN_HASH_SECRET=iin_secret,
        QATYSU_SERVER__ACCESS_LOG="false",
        **(env or {}),
    )
    command = [sys.executable, "-m", "core.host.cli", "serve", "--port", str(port)]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*command, "--workers", str(workers)],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class PostgresServer:
    """Creates empty databases on the test PostgreSQL; ``drop_all`` drops every one it created."""

    def __init__(self) -> None:
        import asyncpg  # noqa: F401 - fail early if the driver is missing

        self.run_id = uuid.uuid4().hex[:10]
        self.created: list[str] = []

    async def _admin(self) -> Any:
        import asyncpg

        return await asyncpg.connect(
            POSTGRES_ADMIN_DSN.replace("postgresql+asyncpg", "postgresql"), timeout=3
        )

    async def create_database(self) -> str:
        name = f"qatysu_test_{self.run_id}_{len(self.created)}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        return POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"

    async def drop_all(self) -> None:
        conn = await self._admin()
        try:
            for name in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
