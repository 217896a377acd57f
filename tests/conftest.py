"""Shared fixtures: settings, real databases (SQLite and PostgreSQL), clients and tokens.

PostgreSQL and Redis are the real servers of this machine. Where one is unreachable its tests
skip with the reason, unless ``QATYSU_REQUIRE_SERVICES=1`` (CI), where they fail instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tomllib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from core.app import create_app
from core.identity import mint_token
from core.iin import synthetic_iin
from core.settings import Settings, build_settings

JWT_SECRET = "test-jwt-secret-that-is-long-enough-0123456789"
IIN_SECRET = "test-iin-secret-that-is-long-enough-0123456"
POSTGRES_ADMIN_DSN = os.environ.get(
    "QATYSU_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("QATYSU_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("QATYSU_REQUIRE_SERVICES") == "1"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Tests address the shipped agency register, so it is exercised as it is configured.
SHIPPED_CONFIG = tomllib.loads((REPO_ROOT / "config" / "default.toml").read_text())
REGISTER = {"agencies": SHIPPED_CONFIG["agencies"], "regions": SHIPPED_CONFIG["regions"]}


def service_unavailable(reason: str) -> None:
    """Skip for a missing service, or fail where services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (QATYSU_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


async def require_redis() -> None:
    """Skip (or fail, where services are required) unless Redis answers at ``REDIS_URL``."""
    import redis.asyncio as aioredis

    probe = aioredis.Redis.from_url(REDIS_URL)
    try:
        await probe.ping()
    except Exception as exc:
        service_unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await probe.aclose()


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
    command = [sys.executable, "-m", "core.cli", "serve", "--port", str(port)]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*command, "--workers", str(workers)],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


# --- databases ---------------------------------------------------------------------------


class PostgresServer:
    """Creates a fresh database per test from a template migrated once per run."""

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


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    import asyncio

    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_DSN}: {exc}"
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_available: str | None
) -> AsyncIterator[str]:
    """A fresh, empty database of each kind: SQLite in a temp dir, PostgreSQL created per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'qatysu.db'}"
        return
    if postgres_available is not None:
        service_unavailable(postgres_available)
    server = PostgresServer()
    url = await server.create_database()
    try:
        yield url
    finally:
        await server.drop_all()


# --- settings and clients ------------------------------------------------------------------


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings for a test: secrets, a temp data dir, and admission off unless asked for."""

    def factory(database_url: str | None = None, **sections: dict[str, Any]) -> Settings:
        layered: dict[str, Any] = {
            "server": {"data_dir": str(tmp_path), "access_log": False, "validate_responses": True},
            "identity": {"jwt_secret": JWT_SECRET, "iin_hash_secret": IIN_SECRET},
            "database": {
                "url": database_url or f"sqlite:///{tmp_path / 'qatysu.db'}",
                "migrate_on_start": True,
            },
            "admission": {"enabled": False},
            "metrics": {},
            **REGISTER,
        }
        for name, values in sections.items():
            layered.setdefault(name, {}).update(values)
        return build_settings(layered)

    return factory


ClientFactory = Callable[..., Any]


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Any], make_settings: SettingsFactory
) -> ClientFactory:
    """Start the full app on a test server: ``await make_client(database_url, **sections)``."""

    async def factory(
        database_url: str | None = None, *, extra_plugins: tuple[object, ...] = (), **sections: Any
    ) -> TestClient[web.Request, web.Application]:
        app = create_app(make_settings(database_url, **sections), extra_plugins=extra_plugins)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return factory


@pytest.fixture
async def client(
    make_client: ClientFactory, database_url: str
) -> TestClient[web.Request, web.Application]:
    """The full app on each database."""
    result: TestClient[web.Request, web.Application] = await make_client(database_url)
    return result


# --- identities ----------------------------------------------------------------------------


def token(role: str, sub: str, **claims: Any) -> str:
    return mint_token(JWT_SECRET.encode(), role=role, sub=sub, **claims)


def auth(bearer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer}"}


def citizen(n: int = 1, name: str = "Aigerim Sadykova") -> dict[str, str]:
    """Headers for the n-th synthetic citizen."""
    return auth(token("citizen", synthetic_iin(n), name=name))


def moderator() -> dict[str, str]:
    return auth(token("moderator", "moderator-1", name="Dana Moderator"))


def agency(code: str = "almaty-akimat") -> dict[str, str]:
    return auth(token("agency", f"official-{code}", agency=code, name="Official"))


def operator() -> dict[str, str]:
    return auth(token("operator", "operator-1"))
