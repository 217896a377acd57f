"""The systems an overload step measures, and one measured step.

A *stack* is what a mode puts on the server's core, all inside one CPU cap: a Qatysu process
(admission on or off), and for the proxy modes HAProxy in front of it with the shipped
``config/haproxy/haproxy.cfg``. A *step* floods the stack open-loop at one rate and reads,
before and after, the CPU time of every process of the stack, the server's memory, and the
counters of ``/metrics`` and of HAProxy's stats.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadtests.flood import FloodConfig, FloodResult, RequestKind, run_flood_processes
from loadtests.kernelq import AcceptQueueWatch, listen_overflows
from loadtests.scrape import (
    Counters,
    delta,
    fetch,
    parse_counters,
    parse_haproxy_csv,
    refusals_by_layer,
)
from loadtests.seeding import create_approved_petition
from loadtests.servers import (
    BENCH_SECRET_ENV,
    SERVER_CPU,
    TRUST_LOOPBACK_ENV,
    CpuCap,
    ManagedServer,
    ProxySettings,
    cap_cpu,
    cpu_seconds,
    haproxy_server,
    qatysu_server,
    rss_bytes,
)


@dataclass(frozen=True)
class Mode:
    key: str
    number: int
    title: str
    proxy: bool
    admission: bool


MODES = {
    mode.key: mode
    for mode in (
        Mode("direct-off", 1, "direct, admission off", proxy=False, admission=False),
        Mode("direct-on", 2, "direct, admission on", proxy=False, admission=True),
        Mode("proxy-off", 3, "HAProxy -> admission off", proxy=True, admission=False),
        Mode("proxy-on", 4, "HAProxy -> admission on", proxy=True, admission=True),
    )
}
# On, off, on, off: neighbours in time share the machine's noise.
INTERLEAVED = ("direct-on", "direct-off", "proxy-on", "proxy-off")


@dataclass(kw_only=True)
class CitizenCounter:
    """Hands out disjoint ranges of synthetic citizens, so every signature is a new one."""

    next_number: int = 0

    def take(self, result: FloodResult) -> None:
        self.next_number += result.citizens_used


@dataclass(kw_only=True)
class Stack:
    """One mode's running processes, the URL citizens use and the petition they read."""

    mode: Mode
    server: ManagedServer
    proxy: ManagedServer | None
    stats_url: str | None
    cap: CpuCap | None
    petition_id: str

    @property
    def url(self) -> str:
        return (self.proxy or self.server).url

    @property
    def pids(self) -> list[int]:
        return [self.server.pid] + ([self.proxy.pid] if self.proxy else [])

    def counters(self) -> tuple[Counters, Counters]:
        qatysu = parse_counters(fetch(self.server.url + "/metrics"))
        haproxy = parse_haproxy_csv(fetch(self.stats_url)) if self.stats_url else {}
        return qatysu, haproxy


@contextmanager
def running_stack(
    mode: Mode,
    *,
    workdir: Path,
    name: str,
    cpu_fraction: float | None,
    proxy_settings: ProxySettings,
    extra_env: dict[str, str] | None = None,
    petition_id: str | None = None,
) -> Iterator[Stack]:
    """Start the mode's processes under one CPU cap, create the petition; stop all on exit.

    Given ``petition_id``, the petition is one that an earlier server on the same data (the
    same ``name``) created.
    """
    env = dict(extra_env or {})
    if mode.proxy:
        # HAProxy connects to the backend from loopback; Qatysu trusts its X-Forwarded-For.
        env.update(TRUST_LOOPBACK_ENV)
    server = qatysu_server(
        cpu=SERVER_CPU, workdir=workdir, admission=mode.admission, name=name, extra_env=env
    )
    with ExitStack() as stack:
        stack.enter_context(server)
        proxy, stats_url = None, None
        if mode.proxy:
            proxy, stats_url = haproxy_server(
                backend_port=server.port,
                cpu=SERVER_CPU,
                workdir=workdir,
                name=f"{name}-haproxy",
                settings=proxy_settings,
            )
            stack.enter_context(proxy)
        cap = None
        if cpu_fraction is not None:
            cap = cap_cpu(server.pid, cpu_fraction, f"qatysu-bench-{os.getpid()}-{name}")
            stack.callback(cap.remove)
            if proxy is not None:
                cap.admit(proxy.pid)
        if petition_id is None:
            secret = BENCH_SECRET_ENV["QATYSU_JWT_SECRET"]
            petition_id = create_approved_petition(server.url, secret)
        yield Stack(
            mode=mode,
            server=server,
            proxy=proxy,
            stats_url=stats_url,
            cap=cap,
            petition_id=petition_id,
        )
        # The cgroup can only go once its processes have: stop them before removing it.
        if proxy is not None:
            proxy.stop()
        server.stop()


@dataclass(kw_only=True)
class RssWatch:
    """Samples the server's RSS every 0.25 s in a thread, for the peak during a flood."""

    pid: int
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssWatch:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, rss_bytes(self.pid) or 0)

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)


@dataclass(kw_only=True)
class StepRecord:
    """One flood step on one stack, with what it cost the stack."""

    mode: str
    label: str
    repetition: int
    multiple: float | None
    result: FloodResult
    cpu_seconds: float
    rss_before: int | None
    rss_peak: int | None
    rss_after: int | None
    qatysu: Counters
    haproxy: Counters
    # The kernel's side of the step at the listener the flood aims at (loadtests.kernelq).
    accept_queue_peak: int | None = None
    accept_queue_mean: float | None = None
    listen_overflows: int | None = None

    @property
    def cpu_per_request(self) -> float | None:
        """The stack's CPU time over the step divided by the requests that reached it."""
        return self.cpu_seconds / self.result.sent if self.result.sent else None

    @property
    def refusals(self) -> Counters:
        return refusals_by_layer(self.qatysu, self.haproxy)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "label": self.label,
            "repetition": self.repetition,
            "multiple": self.multiple,
            "cpu_seconds": round(self.cpu_seconds, 4),
            "cpu_ms_per_request": None
            if self.cpu_per_request is None
            else round(self.cpu_per_request * 1000, 4),
            "rss_before": self.rss_before,
            "rss_peak": self.rss_peak,
            "rss_after": self.rss_after,
            "refusals_by_layer": self.refusals,
            "accept_queue_peak": self.accept_queue_peak,
            "accept_queue_mean": self.accept_queue_mean,
            "listen_overflows": self.listen_overflows,
            "qatysu_counters": self.qatysu,
            "haproxy_counters": self.haproxy,
            **self.result.summary(),
        }


def flood_config(
    stack: Stack,
    mix: tuple[RequestKind, ...],
    *,
    give_up: float,
    clients: int,
    requests_per_connection: int,
    max_connections: int | None = None,
) -> FloodConfig:
    return FloodConfig(
        url=stack.url,
        rate=1.0,
        duration=1.0,
        mix=mix,
        give_up=give_up,
        clients=clients,
        max_connections=max_connections,
        requests_per_connection=requests_per_connection,
        jwt_secret=BENCH_SECRET_ENV["QATYSU_JWT_SECRET"],
    )


def measure_step(
    stack: Stack,
    base: FloodConfig,
    *,
    rate: float,
    duration: float,
    citizens: CitizenCounter,
    seed: int,
    label: str,
    repetition: int = 0,
    multiple: float | None = None,
    processes: int = 1,
    cpus: Sequence[int] = (),
    scrape: bool = True,
) -> StepRecord:
    """Flood ``stack`` at ``rate`` for ``duration`` s and read what it cost.

    ``scrape`` False leaves the counters unread, where reading them would itself be refused.
    """
    config = replace(
        base, rate=rate, duration=duration, citizen_offset=citizens.next_number, seed=seed
    )
    qatysu_before, haproxy_before = stack.counters() if scrape else ({}, {})
    rss_before = rss_bytes(stack.server.pid)
    overflows_before = listen_overflows()
    cpu_before = cpu_seconds(stack.pids)
    with (
        RssWatch(pid=stack.server.pid) as watch,
        AcceptQueueWatch(port=urlsplit(stack.url).port or 80) as queue,
    ):
        result = run_flood_processes(config, processes, cpus)
    cpu_after = cpu_seconds(stack.pids)
    overflows_after = listen_overflows()
    rss_after = rss_bytes(stack.server.pid)
    citizens.take(result)
    qatysu_after, haproxy_after = stack.counters() if scrape else ({}, {})
    peak = max(watch.peak, rss_after or 0, rss_before or 0)
    return StepRecord(
        mode=stack.mode.key,
        label=label,
        repetition=repetition,
        multiple=multiple,
        result=result,
        cpu_seconds=cpu_after - cpu_before,
        rss_before=rss_before,
        rss_peak=peak,
        rss_after=rss_after,
        qatysu=delta(qatysu_before, qatysu_after),
        haproxy=delta(haproxy_before, haproxy_after),
        accept_queue_peak=queue.peak,
        accept_queue_mean=queue.mean,
        listen_overflows=None
        if overflows_before is None or overflows_after is None
        else overflows_after - overflows_before,
    )
