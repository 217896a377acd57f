"""``python -m loadtests.cluster`` (``make cluster``): the deploy/ topology from local processes.

HAProxy (with ``deploy/haproxy.cfg``) in front of two Qatysu instances, a private redis-server,
a fresh PostgreSQL database migrated once, and Prometheus scraping both instances and the proxy
with the shipped alert rules. Everything listens on free loopback ports and goes away on Ctrl-C,
the database included. For machines without Docker; the compose file is the deployment.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.instances import (
    FreshDatabase,
    PrivateRedis,
    migrate,
    postgres_admin_url,
    qatysu_instance,
)
from loadtests.options import add_instance_count
from loadtests.seeding import mint
from loadtests.servers import REPO_ROOT, TRUST_LOOPBACK_ENV, ManagedServer, free_port

HAPROXY_CONFIG = REPO_ROOT / "deploy" / "haproxy.cfg"
ALERT_RULES = REPO_ROOT / "config" / "alerts.yml"


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(f"{binary} is not installed: apt-get install {package}")
    return path


def prometheus_config(instances: list[ManagedServer], proxy_stats_port: int, interval: str) -> str:
    targets = ", ".join(f'"127.0.0.1:{server.port}"' for server in instances)
    return f"""global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
rule_files:
  - {ALERT_RULES}
scrape_configs:
  - job_name: qatysu
    scrape_interval: {interval}
    scrape_timeout: {interval}
    static_configs:
      - targets: [{targets}]
  - job_name: haproxy
    scrape_interval: {interval}
    scrape_timeout: {interval}
    static_configs:
      - targets: ["127.0.0.1:{proxy_stats_port}"]
"""


@dataclass
class Cluster:
    """The running topology; ``close()`` stops every process and drops the database."""

    workdir: Path
    database: FreshDatabase
    redis: PrivateRedis
    instances: list[ManagedServer]
    proxy: ManagedServer
    prometheus: ManagedServer | None
    _stack: ExitStack = field(repr=False)

    @property
    def url(self) -> str:
        return self.proxy.url

    def kill(self, index: int) -> None:
        """SIGKILL one instance, as a crashed machine would go."""
        process = self.instances[index].process
        assert process is not None
        process.kill()
        process.wait(30)

    def close(self) -> None:
        self._stack.close()


def start_cluster(
    workdir: Path,
    *,
    instances: int = 2,
    workers: int = 1,
    prometheus: bool = True,
    scrape_interval: str = "5s",
    extra_env: dict[str, str] | None = None,
) -> Cluster:
    haproxy = require("haproxy", "haproxy")
    prometheus_binary = require("prometheus", "prometheus") if prometheus else None
    stack = ExitStack()
    try:
        database = FreshDatabase.create(postgres_admin_url(), prefix="qatysu_cluster")
        stack.callback(database.drop)
        migrate(database.url, workdir)
        redis = PrivateRedis.start(workdir)
        stack.callback(redis.stop)
        # The proxy is on loopback too: X-Forwarded-For is believed from it alone.
        env = {**TRUST_LOOPBACK_ENV, **(extra_env or {})}
        servers = []
        for number in range(1, instances + 1):
            server = qatysu_instance(
                name=f"qatysu-{number}",
                workdir=workdir,
                database_url=database.url,
                redis_url=redis.url,
                workers=workers,
                extra_env=env,
            )
            stack.callback(server.stop)
            servers.append(server.start())
        stats_port = free_port()
        proxy_env = dict(os.environ)
        proxy_port = free_port()
        proxy_env.update(
            QATYSU_HAPROXY_BIND=f"127.0.0.1:{proxy_port}",
            QATYSU_HAPROXY_STATS=f"127.0.0.1:{stats_port}",
            **{f"QATYSU_BACKEND_{n}": f"127.0.0.1:{s.port}" for n, s in enumerate(servers, 1)},
        )
        proxy = ManagedServer(
            command=[haproxy, "-db", "-f", str(HAPROXY_CONFIG)],
            env=proxy_env,
            ready_path="/readyz",
            port=proxy_port,
            log_path=workdir / "haproxy.log",
        )
        stack.callback(proxy.stop)
        proxy.start()
        scraper = None
        if prometheus_binary is not None:
            config = workdir / "prometheus.yml"
            config.write_text(prometheus_config(servers, stats_port, scrape_interval))
            prometheus_port = free_port()
            scraper = ManagedServer(
                command=[
                    prometheus_binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'prometheus'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                ],
                env=dict(os.environ),
                ready_path="/-/ready",
                port=prometheus_port,
                log_path=workdir / "prometheus.log",
            )
            stack.callback(scraper.stop)
            scraper.start()
    except BaseException:
        stack.close()
        raise
    return Cluster(
        workdir=workdir,
        database=database,
        redis=redis,
        instances=servers,
        proxy=proxy,
        prometheus=scraper,
        _stack=stack,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.cluster", description=__doc__)
    add_instance_count(parser)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per instance")
    parser.add_argument("--no-prometheus", action="store_true")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="qatysu-cluster-"))
    # Fresh secrets for each run, shared by the instances (one IIN key: one signature each).
    secret = secrets.token_urlsafe(48)
    cluster = start_cluster(
        workdir,
        instances=args.instances,
        workers=args.workers,
        prometheus=not args.no_prometheus,
        extra_env={
            "QATYSU_JWT_SECRET": secret,
            "QATYSU_IDENTITY__IIN_HASH_SECRET": secrets.token_urlsafe(48),
        },
    )
    try:
        print(f"proxy       {cluster.url}  (HAProxy, deploy/haproxy.cfg)")
        for server in cluster.instances:
            print(f"instance    {server.url}  log {server.log_path}")
        print(f"database    {cluster.database.url}  (dropped on exit)")
        print(f"redis       {cluster.redis.url}")
        if cluster.prometheus is not None:
            print(f"prometheus  {cluster.prometheus.url}")
        print(f"workdir     {workdir}")
        print("citizen token:  " + mint(secret, role="citizen", sub="900101300017", name="A S"))
        print("moderator token: " + mint(secret, role="moderator", sub="moderator-1"))
        print("Ctrl-C stops everything.", flush=True)
        stopped = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopped.set())
        stopped.wait()
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
