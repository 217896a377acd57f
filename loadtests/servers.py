"""Starting, pinning, capping and stopping the processes a benchmark measures."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

from loadtests.seeding import wait_until_ready

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# Qatysu runs from the tree whose virtualenv runs the benchmark: the same tree, or (run with
# another worktree's .venv/bin/python) that tree's code under this benchmark, side by side.
SERVER_ROOT = VENV_BIN.parent.parent if (VENV_BIN.parent.parent / "core").is_dir() else REPO_ROOT
# With two cores, the server under test runs on one and whatever loads it on the other.
SERVER_CPU = 0
LOAD_CPU = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """The command under ``taskset -c cpu`` when taskset exists and the CPU is ours."""
    if cpu is None or shutil.which("taskset") is None:
        return command
    # Compare with the machine, not our own affinity: the generator may have pinned itself.
    if cpu >= (os.cpu_count() or 1):
        return command
    return ["taskset", "-c", str(cpu), *command]


def pin_this_process(cpu: int) -> bool:
    if not hasattr(os, "sched_setaffinity") or cpu >= (os.cpu_count() or 1):
        return False
    os.sched_setaffinity(0, {cpu})
    return True


@dataclass(kw_only=True)
class ManagedServer:
    """A server subprocess: started, waited for, and stopped with SIGTERM (it drains)."""

    command: list[str]
    env: dict[str, str]
    ready_path: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    cwd: Path = REPO_ROOT
    printable: str = field(default="", init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> ManagedServer:
        self.printable = " ".join(self.command)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_ready(self.url, timeout=timeout, path=self.ready_path)
        except Exception:
            self.stop()
            raise RuntimeError(
                f"{self.printable} did not become ready; log:\n{self.log_tail()}"
            ) from None
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def hello_server(*, cpu: int | None, workdir: Path) -> ManagedServer:
    port = free_port()
    command = [sys.executable, "-m", "loadtests.hello", "--port", str(port)]
    return ManagedServer(
        command=pinned(command, cpu),
        env=dict(os.environ),
        ready_path="/hello",
        port=port,
        log_path=workdir / "hello.log",
    )


BENCH_SECRET_ENV = {
    # Secrets for a throwaway server on loopback; never for a real deployment.
    "QATYSU_JWT_SECRET": "bench-jwt-secret-not-for-production-0123456789",
    "QATYSU_IDENTITY__IIN_HASH_SECRET": "bench-iin-secret-not-for-production",
}


# A load generator stands for many clients from one address: per-address caps would cap it
# as one client (server.max_connections_per_address, admission.max_inflight_per_address).
ONE_ADDRESS_FOR_MANY_ENV = {
    "QATYSU_SERVER__MAX_CONNECTIONS_PER_ADDRESS": "0",
    "QATYSU_ADMISSION__MAX_INFLIGHT_PER_ADDRESS": "0",
}


# The benchmark petition goes to the Government; at the real 50,000 it would stop accepting
# signatures (409) in the middle of a fast run.
BENCH_THRESHOLDS = '{"republic": {"signatures": 1000000000, "source": "a benchmark figure"}}'
# Loopback is the trusted proxy: the X-Forwarded-For a load tool sends names the citizen.
TRUST_LOOPBACK_ENV = {"QATYSU_SERVER__TRUSTED_PROXIES": '["127.0.0.1/32"]'}


def bench_server_env(data_dir: Path) -> dict[str, str]:
    """The settings every benchmarked Qatysu runs with (as the reports print them)."""
    return {
        **BENCH_SECRET_ENV,
        **ONE_ADDRESS_FOR_MANY_ENV,
        "QATYSU_SERVER__DATA_DIR": str(data_dir),
        "QATYSU_SERVER__ACCESS_LOG": "false",
        "QATYSU_KAZAKHSTAN__THRESHOLDS": BENCH_THRESHOLDS,
    }


def serve_command(venv_bin: Path, port: int, *, admission: bool) -> list[str]:
    return [
        str(venv_bin / "qatysu"),
        "serve",
        "--port",
        str(port),
        "--admission",
        "on" if admission else "off",
    ]


def qatysu_server(
    *,
    cpu: int | None,
    workdir: Path,
    admission: bool,
    name: str,
    extra_env: dict[str, str] | None = None,
    venv_bin: Path = VENV_BIN,
) -> ManagedServer:
    """One Qatysu process on SQLite in ``workdir``, access log off (as printed in reports);
    ``venv_bin`` may name another source tree's environment."""
    port = free_port()
    data_dir = workdir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        *serve_command(venv_bin, port, admission=admission),
        "--database-url",
        f"sqlite:///{data_dir / 'q.db'}",
    ]
    return ManagedServer(
        command=pinned(command, cpu),
        env=dict(os.environ) | bench_server_env(data_dir) | (extra_env or {}),
        ready_path="/readyz",
        port=port,
        log_path=workdir / f"{name}.log",
        cwd=SERVER_ROOT,
    )


def server_code() -> str:
    """Which tree and commit the Qatysu servers run, for the report."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(SERVER_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(SERVER_ROOT), "status", "--porcelain", "--", "core", "plugins"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(SERVER_ROOT)
    return f"{SERVER_ROOT} at {commit}{' (with uncommitted changes)' if dirty else ''}"


def bench_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="qatysu-bench-"))


# ---------------------------------------------------------------------------------------------
# CPU caps


@dataclass
class CpuCap:
    """A CFS quota on one process through a child cgroup (v2 ``cpu.max``, else v1 quota)."""

    description: str
    group: Path | None = None

    def admit(self, pid: int) -> None:
        """Put another process under the same quota (HAProxy beside the server it fronts)."""
        if self.group is not None:
            (self.group / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        if self.group is None:
            return
        # A group can only go once empty: the capped process has exited by now.
        for _ in range(50):
            try:
                self.group.rmdir()
                return
            except OSError:
                time.sleep(0.1)


# A short period: a capped server stalls at most (1 - share) of 10 ms at a time, not of 100 ms.
CPU_PERIOD_US = 10_000


def cgroup_v2_root() -> Path | None:
    for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        controllers = root / "cgroup.controllers"
        try:
            if "cpu" in controllers.read_text().split():
                return root
        except OSError:
            continue
    return None


def cap_cpu(pid: int, fraction: float, name: str) -> CpuCap:
    """Limit ``pid`` to ``fraction`` of one core; the description says what was (not) applied."""
    quota = max(1000, int(CPU_PERIOD_US * fraction))
    errors: list[str] = []
    v2 = cgroup_v2_root()
    if v2 is not None:
        group = v2 / name
        try:
            (v2 / "cgroup.subtree_control").write_text("+cpu")
            group.mkdir(exist_ok=True)
            (group / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
            (group / "cgroup.procs").write_text(str(pid))
            return CpuCap(f'cgroup v2 {group}/cpu.max = "{quota} {CPU_PERIOD_US}"', group)
        except OSError as error:
            errors.append(f"cgroup v2: {error}")
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists():
        group = v1 / name
        try:
            group.mkdir(exist_ok=True)
            (group / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
            (group / "cgroup.procs").write_text(str(pid))
            return CpuCap(
                f"cgroup v1 {group}: cpu.cfs_quota_us={quota}, cpu.cfs_period_us={CPU_PERIOD_US}",
                group,
            )
        except OSError as error:
            errors.append(f"cgroup v1: {error}")
    reasons = "; ".join(errors) or "no writable cgroup cpu controller found"
    return CpuCap(f"NO CPU CAP APPLIED ({reasons})")


def rss_bytes(pid: int) -> int | None:
    try:
        rss: int = psutil.Process(pid).memory_info().rss
        return rss
    except Exception:  # the process may be gone; a missing figure is printed as "-"
        return None


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time consumed so far by these processes (their threads included)."""
    total = 0.0
    for pid in pids:
        with suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


# ---------------------------------------------------------------------------------------------
# HAProxy in front of a server

HAPROXY_CONFIG = REPO_ROOT / "config" / "haproxy" / "haproxy.cfg"


@dataclass(frozen=True, kw_only=True)
class ProxySettings:
    """The knobs of config/haproxy/haproxy.cfg that the benchmark sets."""

    maxconn: int = 32
    maxqueue: int = 64
    queue_timeout_ms: int = 150


def haproxy_available() -> bool:
    return shutil.which("haproxy") is not None


def haproxy_server(
    *, backend_port: int, cpu: int | None, workdir: Path, name: str, settings: ProxySettings
) -> tuple[ManagedServer, str]:
    """HAProxy with the shipped config in front of ``backend_port``; and its stats CSV URL."""
    port, stats_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        {
            "QATYSU_HAPROXY_BIND": f"127.0.0.1:{port}",
            "QATYSU_HAPROXY_STATS": f"127.0.0.1:{stats_port}",
            "QATYSU_BACKEND": f"127.0.0.1:{backend_port}",
            "QATYSU_BACKEND_MAXCONN": str(settings.maxconn),
            "QATYSU_BACKEND_MAXQUEUE": str(settings.maxqueue),
            "QATYSU_HAPROXY_QUEUE": f"{settings.queue_timeout_ms}ms",
        }
    )
    command = ["haproxy", "-db", "-f", str(HAPROXY_CONFIG)]
    server = ManagedServer(
        command=pinned(command, cpu),
        env=env,
        ready_path="/readyz",  # through the proxy: both are up
        port=port,
        log_path=workdir / f"{name}.log",
    )
    return server, f"http://127.0.0.1:{stats_port}/stats;csv"
