"""Qatysu instances that share PostgreSQL and Redis, and the services they share.

Used by the local cluster (``python -m loadtests.cluster``) and by ``loadtests.bench signing
--database-url ... --instances N``. Every service is private to the run: a fresh PostgreSQL
database, a redis-server on a free port, instances on free ports, all on loopback.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from loadtests.servers import (
    BENCH_SECRET_ENV,
    BENCH_THRESHOLDS,
    ONE_ADDRESS_FOR_MANY_ENV,
    REPO_ROOT,
    VENV_BIN,
    ManagedServer,
    free_port,
    pinned,
)

DEFAULT_POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    return os.environ.get("QATYSU_CLUSTER_POSTGRES", DEFAULT_POSTGRES_ADMIN)


@dataclass
class FreshDatabase:
    """A PostgreSQL database created for one run and dropped after it."""

    admin_url: str
    name: str

    @property
    def url(self) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{self.name}"

    @classmethod
    def create(cls, admin_url: str, prefix: str = "qatysu_run") -> FreshDatabase:
        database = cls(admin_url=admin_url, name=f"{prefix}_{uuid.uuid4().hex[:10]}")
        asyncio.run(database._admin(f'CREATE DATABASE "{database.name}"'))
        return database

    def drop(self) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def _admin(self, statement: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        """Rows of one query on this database, read straight from PostgreSQL."""

        async def run() -> list[tuple[object, ...]]:
            import asyncpg

            conn = await asyncpg.connect(self.url, timeout=5)
            try:
                return [tuple(row) for row in await conn.fetch(sql, *args)]
            finally:
                await conn.close()

        return asyncio.run(run())


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within {timeout:g} s")


@dataclass
class PrivateRedis:
    """redis-server on a free loopback port, without persistence."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, workdir: Path) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: apt-get install redis-server")
        port = free_port()
        with (workdir / "redis.log").open("ab") as log:
            process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        redis = cls(port=port, process=process)
        try:
            wait_for_port(port, timeout=15, process=process)
        except RuntimeError:
            redis.stop()
            raise
        return redis

    def command_calls(self) -> dict[str, int]:
        """How many times Redis has run each command (INFO commandstats)."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=5)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def instance_env(
    *,
    data_dir: Path,
    database_url: str,
    redis_url: str | None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one instance: explicit secrets, shared database and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QATYSU_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(BENCH_SECRET_ENV)
    env.update(ONE_ADDRESS_FOR_MANY_ENV)
    env.update(
        {
            "QATYSU_SERVER__DATA_DIR": str(data_dir),
            "QATYSU_SERVER__ACCESS_LOG": "false",
            "QATYSU_DATABASE_URL": database_url,
            # The benchmark petition goes to the government and must not reach its threshold.
            "QATYSU_KAZAKHSTAN__THRESHOLDS": BENCH_THRESHOLDS,
        }
    )
    if redis_url is not None:
        env["QATYSU_REDIS_URL"] = redis_url
    env.update(extra_env or {})
    return env


def migrate(database_url: str, workdir: Path) -> None:
    """``qatysu migrate`` once, as the compose topology's one-shot service does."""
    env = instance_env(data_dir=workdir / "migrate", database_url=database_url, redis_url=None)
    result = subprocess.run(
        [str(VENV_BIN / "qatysu"), "migrate"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"qatysu migrate failed:\n{result.stdout}{result.stderr}")


def qatysu_instance(
    *,
    name: str,
    workdir: Path,
    database_url: str,
    redis_url: str | None,
    cpu: int | None = None,
    workers: int = 1,
    admission: bool = True,
    extra_env: dict[str, str] | None = None,
) -> ManagedServer:
    """One ``qatysu serve`` on a free port, sharing the database (and Redis when given)."""
    port = free_port()
    data_dir = workdir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(VENV_BIN / "qatysu"),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--admission",
        "on" if admission else "off",
    ]
    return ManagedServer(
        command=pinned(command, cpu),
        env=instance_env(
            data_dir=data_dir, database_url=database_url, redis_url=redis_url, extra_env=extra_env
        ),
        ready_path="/readyz",
        port=port,
        log_path=workdir / f"{name}.log",
    )
