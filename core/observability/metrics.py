"""Prometheus metrics, all prefixed ``qatysu_``; no label ever names a client.

Each app owns a registry, so tests and several apps in one process do not collide. With several
worker processes (``PROMETHEUS_MULTIPROC_DIR`` set) values live in the shared directory and
``/metrics`` aggregates them through the multiprocess collector. That collector has no
``process_*`` metrics, so ``WorkerProcessCollector`` adds each live process's own, labelled by its
``pid``: a handful of series per worker, never per client.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from aiohttp import __version__ as aiohttp_version
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector

from core.version import qatysu_version

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
PREFIX = "qatysu_"
# How a gauge's values from several worker processes combine (prometheus_client's modes).
GaugeMode = Literal["livemin", "livemax", "livesum", "min", "max", "sum"]
# prometheus_client names each process's value files <kind>_<pid>.db.
_VALUE_FILE_PID = re.compile(r"_(\d+)\.db$")


class Metrics:
    """The core's metrics, and the counters and gauges plugins declare with ``add_counter`` and
    ``add_gauge``."""

    def __init__(self, *, slo_seconds: float = 0.25) -> None:
        self.multiprocess = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        self.registry = CollectorRegistry(auto_describe=True)
        if not self.multiprocess:
            ProcessCollector(registry=self.registry)
        r = self.registry
        buckets = tuple(sorted({*LATENCY_BUCKETS, slo_seconds}))
        self.http_requests = Counter(
            "qatysu_http_requests_total",
            "HTTP requests answered.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "qatysu_http_request_duration_seconds",
            "Time to answer a request.",
            ["route", "method"],
            buckets=buckets,
            registry=r,
        )
        self.admission_inflight = Gauge(
            "qatysu_admission_inflight",
            "Requests holding a concurrency slot.",
            ["priority"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.admission_limit = Gauge(
            "qatysu_admission_limit",
            "The adaptive concurrency limit.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.admission_queue_length = Gauge(
            "qatysu_admission_queue_length",
            "Requests waiting for a slot.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.admission_drop_probability = Gauge(
            "qatysu_admission_drop_probability",
            "The share of non-critical requests the edge refuses (PIE, from measured delay).",
            registry=r,
            multiprocess_mode="max",
        )
        self.admission_accept_queue_length = Gauge(
            "qatysu_admission_accept_queue_length",
            "Connections waiting in the listener's accept queue (the longest seen lately).",
            registry=r,
            multiprocess_mode="max",
        )
        self.admission_kernel_age = Histogram(
            "qatysu_admission_kernel_age_seconds",
            "How long a new connection had waited in the kernel when it was accepted.",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.admission_queue_wait = Histogram(
            "qatysu_admission_queue_wait_seconds",
            "Time a request waited for a slot.",
            ["priority"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.admission_rejected = Counter(
            "qatysu_admission_rejected_total",
            "Requests shed by admission.",
            ["reason", "priority"],
            registry=r,
        )
        self.ratelimit_limited = Counter(
            "qatysu_ratelimit_limited_total",
            "Requests refused by a rate limit.",
            ["policy"],
            registry=r,
        )
        self.ratelimit_backend_errors = Counter(
            "qatysu_ratelimit_backend_errors_total",
            "Rate-limit checks that could not reach the shared backend.",
            registry=r,
        )
        self.writer_queue_length = Gauge(
            "qatysu_writer_queue_length",
            "Writes waiting for the group-commit writer.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.writer_batch_size = Histogram(
            "qatysu_writer_batch_size",
            "Writes committed in one transaction.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.writer_commit_seconds = Histogram(
            "qatysu_writer_commit_seconds",
            "Time to run and commit one batch.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.writer_rejected = Counter(
            "qatysu_writer_rejected_total",
            "Writes refused because the writer queue was full.",
            registry=r,
        )
        self.event_loop_lag = Gauge(
            "qatysu_event_loop_lag_seconds",
            "How late the event loop ran a timer.",
            registry=r,
            multiprocess_mode="max",
        )
        self.http_unavailable = Counter(
            "qatysu_http_unavailable_total",
            "503 answers by reason: admission's shedding, draining, and storage failures.",
            ["reason"],
            registry=r,
        )
        self.ready = Gauge(
            "qatysu_ready",
            "1 when this instance's last readiness check (/readyz) answered ready, else 0.",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.build_info = Gauge(
            "qatysu_build_info",
            "Always 1; the labels say which Qatysu, Python and aiohttp are running.",
            ["version", "python", "aiohttp"],
            registry=r,
            multiprocess_mode="max",
        )
        self.build_info.labels(qatysu_version(), platform.python_version(), aiohttp_version).set(1)
        self.live_streams = Gauge(
            "qatysu_live_streams",
            "Open server-sent event streams of live counts.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.live_events = Counter(
            "qatysu_live_events_total",
            "Events written to live streams, one per stream each.",
            ["event"],
            registry=r,
        )
        self.live_lag = Histogram(
            "qatysu_live_lag_seconds",
            "From a change's commit to its event going out to this instance's watchers.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fanout_fallbacks = Counter(
            "qatysu_fanout_fallbacks_total",
            "Times the fan-out lost Redis and watchers fell back to polling.",
            registry=r,
        )
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._duration_children: dict[tuple[str, str], Histogram] = {}
        self._unavailable_children: dict[str, Counter] = {}
        self._plugin_metrics: set[str] = set()
        self.events_emitted = Counter(
            "qatysu_events_total",
            "Domain events emitted to plugins.",
            ["event"],
            registry=r,
        )

    def add_counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        """Declare a plugin's counter in this registry, so ``/metrics`` shows it from the start.

        ValueError when the name lacks the ``qatysu_`` prefix or is already taken.
        """
        self._claim(name)
        return Counter(name, documentation, labelnames, registry=self.registry)

    def add_gauge(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        multiprocess_mode: GaugeMode = "livemin",
    ) -> Gauge:
        """Declare a plugin's gauge in this registry, so ``/metrics`` shows it from the start.

        With several workers the live processes' values combine by ``multiprocess_mode``.
        ValueError when the name lacks the ``qatysu_`` prefix or is already taken.
        """
        self._claim(name)
        return Gauge(
            name,
            documentation,
            labelnames,
            registry=self.registry,
            multiprocess_mode=multiprocess_mode,
        )

    def _claim(self, name: str) -> None:
        if not name.startswith(PREFIX):
            raise ValueError(f"metric {name!r}: every metric name starts with {PREFIX!r}")
        if name in self._plugin_metrics:
            raise ValueError(f"metric {name!r} is already declared")
        self._plugin_metrics.add(name)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request; label children are cached, as resolving them is slow."""
        key = (route, method, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self.http_requests.labels(route, method, str(status))
            self._request_children[key] = counter
        counter.inc()
        histogram = self._duration_children.get(key[:2])
        if histogram is None:
            histogram = self.http_duration.labels(route, method)
            self._duration_children[key[:2]] = histogram
        histogram.observe(seconds)

    def count_unavailable(self, reason: str) -> None:
        """Count one 503 answer by its reason (``unspecified`` when it gave none)."""
        reason = reason or "unspecified"
        counter = self._unavailable_children.get(reason)
        if counter is None:
            counter = self._unavailable_children[reason] = self.http_unavailable.labels(reason)
        counter.inc()

    def exposition(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(WorkerProcessCollector(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])))
            return generate_latest(registry)
        return generate_latest(self.registry)


class WorkerProcessCollector:
    """The ``process_*`` metrics of every live process that writes to a multiprocess directory,
    each sample labelled with the process's ``pid``."""

    def __init__(self, directory: Path, *, proc: str = "/proc") -> None:
        self.directory = directory
        self.proc = proc

    def live_pids(self) -> list[int]:
        """The processes with value files here that are still running."""
        pids = {
            int(match.group(1))
            for path in self.directory.glob("*.db")
            if (match := _VALUE_FILE_PID.search(path.name)) is not None
        }
        return sorted(pid for pid in pids if Path(self.proc, str(pid), "stat").exists())

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for pid in self.live_pids():
            # ProcessCollector asks a callable for the pid whose /proc/<pid>/stat it reads.
            reader = ProcessCollector(pid=str(pid).strip, proc=self.proc, registry=None)
            for family in reader.collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from families.values()

    def describe(self) -> Iterator[Metric]:
        # Which processes run is known only at collection time.
        return iter(())
