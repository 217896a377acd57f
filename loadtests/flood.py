"""An open-loop flood generator: requests leave on schedule whatever the server answers.

A closed-loop tool (wrk, Locust users) waits for an answer before asking again, so a slow server
slows its own load down and the overload never happens. Citizens do not wait for each other: a
viral petition brings a stream of arrivals whose rate does not care how the server is doing. This
generator models that stream:

- arrivals follow a Poisson (or fixed-interval) schedule at the offered rate, computed up front;
- every latency, and the give-up, is counted from a request's *intended* send time: a generator
  that sends late must not hide the wait from the figures (coordinated omission);
- each request gives up ``give_up`` seconds (2 s by default) after its intended time and closes
  its connection, as a citizen who closes the tab; a late answer counts as a timeout;
- requests come from many client addresses (``127.x.y.z``, all routed to ``lo`` by Linux), each
  with its own keep-alive connections, a new one opened when none is idle, like a browser; with
  ``requests_per_connection`` a connection closes after that many requests, so a flash crowd is
  many distinct citizens, each on their own connection for a few requests;
- the generator's own pool of open connections is capped (by default at one idle connection
  per client plus rate x give-up, which never binds, so no client's kept-alive connection is
  evicted to make room); a request that finds it full is counted as ``not_sent``, never as
  sent;
- a request never answered is one that timed out, was reset, or whose connection could not be
  made: to the citizen each is the same failure.

The HTTP/1.1 client is a bare ``asyncio.Protocol`` writing pre-built request bytes: aiohttp's
client costs several times more CPU per request and would make the generator the bottleneck.

    python -m loadtests.flood --url http://127.0.0.1:18080 --rate 2000 --duration 20 \\
        --mix read=90,sign=10 --setup

As a library: ``result = await run_flood(config)``, or ``run_flood_processes(config, n)`` to
split the rate over ``n`` generator processes and merge their results.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import gc
import json
import math
import os
import random
import socket
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from typing import Literal, cast
from urllib.parse import urlsplit

DEFAULT_GIVE_UP = 2.0
# Goodput counts a 2xx only when it arrived within this SLO of the intended send time.
DEFAULT_SLO = 0.250
# Generator lag (actual send time minus scheduled time) above this at p99 means the generator
# could not keep its schedule, so the offered rate was not really offered.
LAG_P99_BUDGET = 0.020
# uvloop's loop.time() is libuv's millisecond clock, cached per loop iteration: too coarse for
# latencies, so every measurement uses this clock and timers are set relative to it.
clock = time.perf_counter


class Outcome(enum.IntEnum):
    """What became of one request."""

    OK = 0
    NOT_MODIFIED = 1
    RATE_LIMITED = 2
    SHED = 3
    OTHER_4XX = 4
    OTHER_5XX = 5
    OTHER_STATUS = 6
    TIMEOUT = 7
    CONNECT_ERROR = 8
    RESET = 9
    NOT_SENT = 10

    @property
    def label(self) -> str:
        return OUTCOME_LABELS[self]


OUTCOME_LABELS: dict[Outcome, str] = {
    Outcome.OK: "2xx",
    Outcome.NOT_MODIFIED: "304",
    Outcome.RATE_LIMITED: "429",
    Outcome.SHED: "503",
    Outcome.OTHER_4XX: "other_4xx",
    Outcome.OTHER_5XX: "other_5xx",
    Outcome.OTHER_STATUS: "other_status",
    Outcome.TIMEOUT: "timeout",
    Outcome.CONNECT_ERROR: "connect_error",
    Outcome.RESET: "reset",
    Outcome.NOT_SENT: "not_sent",
}


def classify_status(status: int) -> Outcome:
    """The outcome of a request that got a complete answer with this status."""
    if 200 <= status < 300:
        return Outcome.OK
    if status == 304:
        return Outcome.NOT_MODIFIED
    if status == 429:
        return Outcome.RATE_LIMITED
    if status == 503:
        return Outcome.SHED
    if 400 <= status < 500:
        return Outcome.OTHER_4XX
    if 500 <= status < 600:
        return Outcome.OTHER_5XX
    return Outcome.OTHER_STATUS


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none.

    Nearest rank never interpolates, so p99 is a latency some request really had.
    """
    if not sorted_values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# ---------------------------------------------------------------------------------------------
# What to send


@dataclass(frozen=True, kw_only=True)
class RequestKind:
    """One kind of request in the mix; ``fresh_citizen`` ones each carry a never-used token."""

    name: str
    method: str
    path: str
    weight: float
    body: bytes = b""
    fresh_citizen: bool = False


NAMED_KINDS = ("read", "sign", "list", "hello")


def named_kind(name: str, weight: float, petition_id: str | None) -> RequestKind:
    """The request kinds the mix can name: the flash-crowd ones and the bare baseline."""
    if name == "hello":
        return RequestKind(name=name, method="GET", path="/hello", weight=weight)
    if name == "list":
        path = "/api/v1/petitions?sort=signatures&limit=20"
        return RequestKind(name=name, method="GET", path=path, weight=weight)
    if name not in NAMED_KINDS:
        raise ValueError(
            f"unknown mix entry {name!r}: use {', '.join(NAMED_KINDS)} or METHOD:/path"
        )
    if petition_id is None:
        raise ValueError(f"mix entry {name!r} needs a petition id (--petition-id or --setup)")
    if name == "read":
        return RequestKind(
            name=name, method="GET", path=f"/api/v1/petitions/{petition_id}", weight=weight
        )
    path = f"/api/v1/petitions/{petition_id}/signatures"
    return RequestKind(name=name, method="POST", path=path, weight=weight, fresh_citizen=True)


def parse_mix(spec: str, petition_id: str | None = None) -> tuple[RequestKind, ...]:
    """``read=90,sign=10`` or ``GET:/api/v1/information?q=tax=5``: name or METHOD:/path = weight."""
    kinds: list[RequestKind] = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        target, _, weight_text = entry.rpartition("=")
        if not target:
            raise ValueError(f"mix entry {entry!r} needs a weight: name=weight")
        weight = float(weight_text)
        if weight <= 0:
            raise ValueError(f"mix entry {entry!r} needs a positive weight")
        method, colon, path = target.partition(":")
        if colon and path.startswith("/"):
            kinds.append(RequestKind(name=target, method=method.upper(), path=path, weight=weight))
        else:
            kinds.append(named_kind(target, weight, petition_id))
    if not kinds:
        raise ValueError("the mix is empty")
    return tuple(kinds)


def request_head(kind: RequestKind, host: str) -> tuple[bytes, bytes]:
    """The request split around the bearer token: ``prefix + token + suffix`` is sent."""
    lines = [
        f"{kind.method} {kind.path} HTTP/1.1",
        f"Host: {host}",
        "User-Agent: qatysu-flood",
        "Accept: application/json",
    ]
    if kind.body or kind.method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(kind.body)}")
    if kind.body:
        lines.append("Content-Type: application/json")
    head = "\r\n".join(lines).encode("latin-1")
    if kind.fresh_citizen:
        return head + b"\r\nAuthorization: Bearer ", b"\r\n\r\n" + kind.body
    return head + b"\r\n\r\n" + kind.body, b""


# ---------------------------------------------------------------------------------------------
# When to send


@dataclass(frozen=True, kw_only=True)
class FloodConfig:
    """One open-loop run. Keyword-only, immutable and picklable (it crosses process bounds).

    ``max_connections`` None sizes the pool so that it never binds; ``requests_per_connection``
    0 keeps connections alive for as long as the server does.
    """

    url: str
    rate: float
    duration: float
    mix: tuple[RequestKind, ...]
    give_up: float = DEFAULT_GIVE_UP
    arrivals: Literal["poisson", "uniform"] = "poisson"
    clients: int = 2048
    max_connections: int | None = None
    requests_per_connection: int = 0
    slo: float = DEFAULT_SLO
    jwt_secret: str | None = None
    citizen_offset: int = 0
    first_client: int = 0
    seed: int = 1
    start_at: float | None = None
    cpu_affinity: tuple[int, ...] | None = None

    @property
    def connection_pool(self) -> int:
        """The generator's cap on open connections."""
        if self.max_connections is not None:
            return self.max_connections
        return pool_that_never_binds(self.rate, self.give_up, self.clients)


def pool_that_never_binds(rate: float, give_up: float, clients: int = 0) -> int:
    """Open connections enough for every request of ``give_up`` seconds to be in flight at once,
    beside one idle kept-alive connection per client.

    A request holds a connection for at most ``give_up`` seconds, so at ``rate`` no more than
    about ``rate x give_up`` are ever busy; a margin covers Poisson bursts and connections whose
    close the loop has not seen yet. Without room for each client's idle connection, a pool
    smaller than the clients evicts them all at low rates, and every request opens a new one.
    """
    return math.ceil(rate * give_up * 1.5) + 256 + clients


def arrival_offsets(
    rate: float, duration: float, arrivals: str, rng: random.Random
) -> array[float]:
    """Send times in seconds from the start. Uniform gives exactly floor(rate x duration)."""
    offsets: array[float] = array("d")
    if arrivals == "uniform":
        count = math.floor(rate * duration + 1e-9)
        offsets.extend(i / rate for i in range(count))
        return offsets
    if arrivals != "poisson":
        raise ValueError(f"arrivals must be poisson or uniform, not {arrivals!r}")
    at = rng.expovariate(rate)
    while at < duration:
        offsets.append(at)
        at += rng.expovariate(rate)
    return offsets


def weighted_round_robin(weights: Sequence[float], count: int) -> bytearray:
    """Kind indexes in smooth weighted round robin (nginx's): exact shares, evenly interleaved.

    Deterministic rather than random so that a run's mix is exactly the one asked for.
    """
    if len(weights) > 255:
        raise ValueError("at most 255 request kinds")
    total = sum(weights)
    current = [0.0] * len(weights)
    picks = bytearray(count)
    indexes = range(len(weights))
    for position in range(count):
        for index in indexes:
            current[index] += weights[index]
        best = max(indexes, key=current.__getitem__)
        current[best] -= total
        picks[position] = best
    return picks


def source_address(client: int) -> str:
    """A distinct loopback address per client: 127.1.0.1 onwards, skipping .0 and .255 hosts."""
    second, rest = divmod(client, 256 * 254)
    third, fourth = divmod(rest, 254)
    if second >= 254:
        raise ValueError(f"client {client} is beyond the loopback addresses this tool uses")
    return f"127.{second + 1}.{third}.{fourth + 1}"


def mint_citizen_tokens(secret: str, first: int, count: int) -> list[bytes]:
    """Tokens for ``count`` distinct citizens, minted before the clock starts (~20 us each)."""
    from core.identity.tokens import mint_token
    from core.iin import synthetic_iin

    key = secret.encode()
    return [
        mint_token(
            key, role="citizen", sub=synthetic_iin(n), name="Aigerim Sadykova", ttl=4 * 3600
        ).encode("ascii")
        for n in range(first, first + count)
    ]


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(kw_only=True)
class FloodResult:
    """Every request's outcome and latency; merged across generator processes by ``merge``.

    ``scheduled`` requests were due; ``sent`` left the generator; the rest are ``not_sent``
    (the generator's connection pool was full). Latencies run from the intended send time.
    """

    offered_rate: float
    duration: float
    give_up: float
    slo: float = DEFAULT_SLO
    processes: int = 1
    scheduled: int = 0
    sent: int = 0
    send_window: float = 0.0
    start_delay: float = 0.0
    citizens_used: int = 0
    connection_pool: int = 0
    requests_per_connection: int = 0
    connections_opened: int = 0
    on_new_connection: int = 0
    missing_retry_after: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    within_slo: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, array[float]] = field(default_factory=dict)
    lags: array[float] = field(default_factory=lambda: array("d"))

    def outcome_count(self, label: str, kind: str | None = None) -> int:
        per_kind = self.counts.values() if kind is None else [self.counts.get(kind, {})]
        return sum(outcomes.get(label, 0) for outcomes in per_kind)

    @property
    def outcome_totals(self) -> dict[str, int]:
        return {label: self.outcome_count(label) for label in OUTCOME_LABELS.values()}

    @property
    def not_sent(self) -> int:
        return self.outcome_count("not_sent")

    @property
    def pool_bound(self) -> bool:
        """True when the generator's own connection cap kept requests from being sent."""
        return self.not_sent > 0

    @property
    def really_offered_rate(self) -> float:
        """Requests that left the generator per second: the load the server really saw."""
        return self.sent / self.duration if self.duration > 0 else 0.0

    @property
    def ok_rate(self) -> float:
        """2xx answers per second, however late within the give-up."""
        return self.outcome_count("2xx") / self.duration if self.duration > 0 else 0.0

    def good(self, kind: str | None = None) -> int:
        """2xx answers within the SLO of their intended send time."""
        if kind is None:
            return sum(self.within_slo.values())
        return self.within_slo.get(kind, 0)

    @property
    def goodput(self) -> float:
        """2xx answers within the SLO per second."""
        return self.good() / self.duration if self.duration > 0 else 0.0

    def good_share(self) -> float:
        """The share of the requests due that got a 2xx within the SLO."""
        return self.good() / self.scheduled if self.scheduled else 0.0

    @property
    def unanswered(self) -> int:
        """Requests sent but never answered within the give-up, reset, or whose connection
        failed: to the citizen all are worse than a 503."""
        return (
            self.outcome_count("timeout")
            + self.outcome_count("reset")
            + self.outcome_count("connect_error")
        )

    @property
    def new_connection_share(self) -> float:
        """The share of the requests sent that opened a connection of their own."""
        return self.on_new_connection / self.sent if self.sent else 0.0

    @property
    def rejections(self) -> int:
        return self.outcome_count("429") + self.outcome_count("503")

    def latency_percentile(self, label: str, q: float) -> float | None:
        return percentile(sorted(self.latencies.get(label, ())), q)

    def rejection_percentile(self, q: float) -> float | None:
        both = [*self.latencies.get("429", ()), *self.latencies.get("503", ())]
        return percentile(sorted(both), q)

    def lag_percentile(self, q: float) -> float | None:
        return percentile(sorted(self.lags), q)

    @property
    def kept_schedule(self) -> bool:
        """True when the generator really offered the rate: nearly every request left on time."""
        lag_p99 = self.lag_percentile(99)
        return lag_p99 is not None and lag_p99 <= LAG_P99_BUDGET

    def merge(self, other: FloodResult) -> FloodResult:
        """The union of two runs made at the same time (rates add up, durations do not)."""
        merged = FloodResult(
            offered_rate=self.offered_rate + other.offered_rate,
            duration=max(self.duration, other.duration),
            give_up=self.give_up,
            slo=self.slo,
            processes=self.processes + other.processes,
            scheduled=self.scheduled + other.scheduled,
            sent=self.sent + other.sent,
            send_window=max(self.send_window, other.send_window),
            start_delay=max(self.start_delay, other.start_delay),
            citizens_used=self.citizens_used + other.citizens_used,
            connection_pool=self.connection_pool + other.connection_pool,
            requests_per_connection=self.requests_per_connection,
            connections_opened=self.connections_opened + other.connections_opened,
            on_new_connection=self.on_new_connection + other.on_new_connection,
            missing_retry_after=self.missing_retry_after + other.missing_retry_after,
        )
        for source in (self, other):
            for kind, outcomes in source.counts.items():
                target = merged.counts.setdefault(kind, {})
                for label, count in outcomes.items():
                    target[label] = target.get(label, 0) + count
            for kind, count in source.within_slo.items():
                merged.within_slo[kind] = merged.within_slo.get(kind, 0) + count
            for label, values in source.latencies.items():
                merged.latencies.setdefault(label, array("d")).extend(values)
            merged.lags.extend(source.lags)
        return merged

    def summary(self) -> dict[str, object]:
        """Figures for the report and the JSON file, without the per-request arrays."""

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 3)

        return {
            "offered_rate": self.offered_rate,
            "really_offered_rate": round(self.really_offered_rate, 1),
            "duration_s": self.duration,
            "give_up_s": self.give_up,
            "slo_s": self.slo,
            "processes": self.processes,
            "scheduled": self.scheduled,
            "sent": self.sent,
            "not_sent": self.not_sent,
            "connection_pool": self.connection_pool,
            "pool_bound": self.pool_bound,
            "requests_per_connection": self.requests_per_connection,
            "connections_opened": self.connections_opened,
            "requests_on_new_connections": self.on_new_connection,
            "kept_schedule": self.kept_schedule,
            "lag_p50_ms": ms(self.lag_percentile(50)),
            "lag_p99_ms": ms(self.lag_percentile(99)),
            "lag_max_ms": ms(max(self.lags) if self.lags else None),
            "start_delay_ms": ms(self.start_delay),
            "goodput": round(self.goodput, 1),
            "good_share": round(self.good_share(), 4),
            "good_by_kind": self.within_slo,
            "ok_rate": round(self.ok_rate, 1),
            "unanswered": self.unanswered,
            "rejections_without_retry_after": self.missing_retry_after,
            "outcomes": self.outcome_totals,
            "outcomes_by_kind": self.counts,
            "latency_ms": {
                label: {
                    "p50": ms(self.latency_percentile(label, 50)),
                    "p99": ms(self.latency_percentile(label, 99)),
                }
                for label in self.latencies
                if self.latencies[label]
            },
            "citizens_used": self.citizens_used,
        }


def merge_results(results: Iterable[FloodResult]) -> FloodResult:
    iterator = iter(results)
    merged = next(iterator)
    for result in iterator:
        merged = merged.merge(result)
    return merged


# ---------------------------------------------------------------------------------------------
# The HTTP/1.1 client


class ResponseParser:
    """Just enough HTTP/1.1 response parsing to know the status and where the response ends."""

    __slots__ = (
        "body_start",
        "buffer",
        "chunked",
        "content_length",
        "keep_alive",
        "retry_after",
        "status",
    )

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.reset()

    def reset(self) -> None:
        self.buffer.clear()
        self.status = 0
        self.body_start = -1
        self.content_length = 0
        self.chunked = False
        self.keep_alive = True
        self.retry_after = False

    def feed(self, data: bytes) -> bool:
        """Take bytes; True once one whole response has arrived."""
        self.buffer += data
        if self.body_start < 0 and not self._parse_head():
            return False
        if self.chunked:
            return self._chunked_body_complete()
        return len(self.buffer) - self.body_start >= self.content_length

    def _parse_head(self) -> bool:
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = bytes(self.buffer[:head_end]).lower()
        status_line, _, headers = head.partition(b"\r\n")
        self.status = int(status_line[9:12])
        self.body_start = head_end + 4
        self.keep_alive = not status_line.startswith(b"http/1.0")
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            value = value.strip()
            if name == b"content-length":
                self.content_length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                self.chunked = True
            elif name == b"connection":
                self.keep_alive = value == b"keep-alive" or (self.keep_alive and value != b"close")
            elif name == b"retry-after":
                self.retry_after = bool(value)
        if self.status in (204, 304) or 100 <= self.status < 200:
            self.content_length = 0
            self.chunked = False
        return True

    def _chunked_body_complete(self) -> bool:
        position = self.body_start
        while True:
            line_end = self.buffer.find(b"\r\n", position)
            if line_end < 0:
                return False
            size = int(bytes(self.buffer[position:line_end]).split(b";")[0], 16)
            if size == 0:
                # The last chunk is followed by optional trailers and an empty line.
                return self.buffer.find(b"\r\n\r\n", line_end) >= 0 or (
                    self.buffer[line_end + 2 : line_end + 4] == b"\r\n"
                )
            position = line_end + 2 + size + 2
            if position > len(self.buffer):
                return False


REJECTIONS = frozenset({Outcome.RATE_LIMITED, Outcome.SHED})


class FloodConnection(asyncio.Protocol):
    """One keep-alive connection from one client address; at most one request in flight."""

    def __init__(self, flood: Flood, client: int) -> None:
        self.flood = flood
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.parser = ResponseParser()
        self.kind = -1
        self.started = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast("asyncio.Transport", transport)

    def send(self, kind: int, payload: bytes, started: float) -> None:
        """Send one request due at ``started``: its latency and give-up count from then."""
        assert self.transport is not None
        self.kind = kind
        self.started = started
        self.requests += 1
        self.parser.reset()
        flood = self.flood
        self.timer = flood.loop.call_later(started + flood.give_up - clock(), self.give_up)
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        if self.kind < 0:
            return  # nothing asked; a server talking out of turn is ignored
        parser = self.parser
        if parser.feed(data):
            outcome = classify_status(parser.status)
            if outcome in REJECTIONS and not parser.retry_after:
                self.flood.missing_retry_after += 1
            self._finish(outcome, keep=parser.keep_alive)

    def give_up(self) -> None:
        """The citizen closes the tab: the request is a timeout and the connection is dropped."""
        self.timer = None
        self._finish(Outcome.TIMEOUT, keep=False)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.kind >= 0:
            self._finish(Outcome.RESET, keep=False)
        self.flood.forget(self)

    def _finish(self, outcome: Outcome, *, keep: bool) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        kind, self.kind = self.kind, -1
        flood = self.flood
        flood.record(kind, outcome, clock() - self.started)
        per_connection = flood.config.requests_per_connection
        if per_connection and self.requests >= per_connection:
            keep = False  # this citizen is done; the next one comes on a new connection
        if keep and not self.closed:
            flood.release(self)
        else:
            flood.close(self)


class Flood:
    """The state of one generator process during one run."""

    def __init__(
        self,
        config: FloodConfig,
        loop: asyncio.AbstractEventLoop,
        tokens: Sequence[bytes],
    ) -> None:
        parts = urlsplit(config.url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only http://host:port URLs are supported, not {config.url!r}")
        self.config = config
        self.loop = loop
        self.target = (parts.hostname, parts.port or 80)
        self.give_up = config.give_up
        host = parts.netloc
        self.heads = [request_head(kind, host) for kind in config.mix]
        self.tokens = tokens
        self.next_token = 0
        self.addresses = [source_address(config.first_client + c) for c in range(config.clients)]
        self.next_client = 0
        self.idle_by_client: list[list[FloodConnection]] = [[] for _ in range(config.clients)]
        # Insertion-ordered, so the longest-idle connection is evicted first when at the cap.
        self.idle: dict[FloodConnection, None] = {}
        self.connection_pool = config.connection_pool
        self.open_connections = 0
        self.connections_opened = 0
        self.on_new_connection = 0
        self.missing_retry_after = 0
        self.in_flight = 0
        self.slo = config.slo
        self.counts = [[0] * len(Outcome) for _ in config.mix]
        self.within_slo = [0] * len(config.mix)
        self.latencies: list[array[float]] = [array("d") for _ in Outcome]
        self.lags: array[float] = array("d")
        self.sent = 0
        # The loop keeps only weak references to tasks: hold them until they finish.
        self.connecting: set[asyncio.Task[None]] = set()
        self.sending_done = False
        self.all_answered = asyncio.Event()

    def payload(self, kind: int) -> bytes:
        prefix, suffix = self.heads[kind]
        if not self.config.mix[kind].fresh_citizen:
            return prefix
        token = self.tokens[self.next_token]
        self.next_token += 1
        return prefix + token + suffix

    def dispatch(self, kind: int, due: float) -> None:
        """Send one request that was due at ``due``; its latency counts from ``due``."""
        self.lags.append(clock() - due)
        client = self.next_client
        self.next_client = (client + 1) % len(self.addresses)
        idle = self.idle_by_client[client]
        if idle:
            connection = idle.pop()
            del self.idle[connection]
            self.sent += 1
            self.in_flight += 1
            connection.send(kind, self.payload(kind), due)
            return
        if self.open_connections >= self.connection_pool and not self.evict_idle():
            self.record(kind, Outcome.NOT_SENT, 0.0)
            return
        self.sent += 1
        self.open_connections += 1
        self.connections_opened += 1
        self.on_new_connection += 1
        self.in_flight += 1
        task = self.loop.create_task(self.connect_and_send(client, kind, self.payload(kind), due))
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)

    def evict_idle(self) -> bool:
        """Close the longest-idle connection of another client to make room, as a browser would."""
        if not self.idle:
            return False
        connection = next(iter(self.idle))
        self.close(connection)
        return True

    async def connect_and_send(
        self, client: int, kind: int, payload: bytes, started: float
    ) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self.addresses[client], 0))
            remaining = started + self.give_up - clock()
            async with asyncio.timeout(max(remaining, 0.0)):
                await self.loop.sock_connect(sock, self.target)
                _, connection = await self.loop.create_connection(
                    lambda: FloodConnection(self, client), sock=sock
                )
        except TimeoutError:
            self.connection_failed(sock, kind, Outcome.TIMEOUT, started)
            return
        except OSError:
            self.connection_failed(sock, kind, Outcome.CONNECT_ERROR, started)
            return
        connection.send(kind, payload, started)

    def connection_failed(
        self, sock: socket.socket, kind: int, outcome: Outcome, started: float
    ) -> None:
        sock.close()
        self.open_connections -= 1
        self.record(kind, outcome, clock() - started)

    def record(self, kind: int, outcome: Outcome, latency: float) -> None:
        if outcome is Outcome.NOT_SENT:
            self.counts[kind][outcome] += 1
            return
        self.in_flight -= 1
        if self.in_flight == 0 and self.sending_done:
            self.all_answered.set()
        self.counts[kind][outcome] += 1
        self.latencies[outcome].append(latency)
        if outcome is Outcome.OK and latency <= self.slo:
            self.within_slo[kind] += 1

    def release(self, connection: FloodConnection) -> None:
        self.idle_by_client[connection.client].append(connection)
        self.idle[connection] = None

    def close(self, connection: FloodConnection) -> None:
        if connection.closed:
            return
        connection.closed = True
        self.open_connections -= 1
        self.unlist_idle(connection)
        if connection.transport is not None:
            connection.transport.close()

    def forget(self, connection: FloodConnection) -> None:
        """The connection is gone (server closed it, or we did): it is no longer open or idle."""
        if not connection.closed:
            connection.closed = True
            self.open_connections -= 1
        self.unlist_idle(connection)

    def unlist_idle(self, connection: FloodConnection) -> None:
        if self.idle.pop(connection, 0) is None:
            self.idle_by_client[connection.client].remove(connection)

    def close_all(self) -> None:
        for connection in list(self.idle):
            self.close(connection)

    def result(self, *, scheduled: int, send_window: float, start_delay: float) -> FloodResult:
        config = self.config
        return FloodResult(
            offered_rate=config.rate,
            duration=config.duration,
            give_up=config.give_up,
            slo=config.slo,
            scheduled=scheduled,
            sent=self.sent,
            send_window=send_window,
            start_delay=start_delay,
            citizens_used=self.next_token,
            connection_pool=self.connection_pool,
            requests_per_connection=config.requests_per_connection,
            connections_opened=self.connections_opened,
            on_new_connection=self.on_new_connection,
            missing_retry_after=self.missing_retry_after,
            within_slo={
                kind.name: self.within_slo[index]
                for index, kind in enumerate(config.mix)
                if self.within_slo[index]
            },
            counts={
                kind.name: {
                    outcome.label: count
                    for outcome, count in zip(Outcome, self.counts[index], strict=True)
                    if count
                }
                for index, kind in enumerate(config.mix)
            },
            latencies={
                outcome.label: values
                for outcome, values in zip(Outcome, self.latencies, strict=True)
                if values
            },
            lags=self.lags,
        )


# ---------------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class Schedule:
    offsets: array[float]
    kinds: bytearray

    def count(self, kind: int) -> int:
        return self.kinds.count(kind)


def build_schedule(config: FloodConfig) -> Schedule:
    offsets = arrival_offsets(
        config.rate, config.duration, config.arrivals, random.Random(config.seed)
    )
    kinds = weighted_round_robin([kind.weight for kind in config.mix], len(offsets))
    return Schedule(offsets, kinds)


def tokens_for(config: FloodConfig, schedule: Schedule) -> list[bytes]:
    needed = sum(
        schedule.count(index) for index, kind in enumerate(config.mix) if kind.fresh_citizen
    )
    if needed == 0:
        return []
    if not config.jwt_secret:
        raise ValueError("the mix signs petitions: set jwt_secret (QATYSU_JWT_SECRET)")
    return mint_citizen_tokens(config.jwt_secret, config.citizen_offset, needed)


async def run_flood(config: FloodConfig) -> FloodResult:
    """Offer ``config.rate`` requests/s for ``config.duration`` s, open-loop, and report."""
    if config.rate <= 0 or config.duration <= 0:
        raise ValueError("rate and duration must be positive")
    schedule = build_schedule(config)
    tokens = tokens_for(config, schedule)
    loop = asyncio.get_running_loop()
    flood = Flood(config, loop, tokens)
    # The tokens and schedule are many long-lived objects: a full collection walking them stalls
    # the loop for tens of milliseconds, enough to spoil the schedule's p99. Freeze them.
    gc.collect()
    gc.freeze()
    try:
        start_delay = await wait_for_start(config.start_at)
        start = clock()
        last_sent = await send_on_schedule(flood, schedule, start)
        await wait_for_answers(flood, patience=config.give_up + 1.0)
        flood.close_all()
        await asyncio.sleep(0)  # let the closed transports report connection_lost
    finally:
        gc.unfreeze()
    return flood.result(
        scheduled=len(schedule.offsets), send_window=last_sent - start, start_delay=start_delay
    )


async def wait_for_start(start_at: float | None) -> float:
    """Sleep until the wall-clock start shared by every generator process; return how late."""
    if start_at is None:
        return 0.0
    delay = start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
        return 0.0
    return -delay


async def send_on_schedule(flood: Flood, schedule: Schedule, start: float) -> float:
    """Dispatch every request at (or as soon as possible after) its time; return the last time."""
    offsets, kinds = schedule.offsets, schedule.kinds
    position, total = 0, len(offsets)
    now = start
    while position < total:
        now = clock()
        # Everything due goes now: the loop wakes up about once a millisecond at best.
        while position < total and start + offsets[position] <= now:
            flood.dispatch(kinds[position], start + offsets[position])
            position += 1
        if position < total:
            await asyncio.sleep(max(0.0, start + offsets[position] - clock()))
    return now


async def wait_for_answers(flood: Flood, *, patience: float) -> None:
    """Wait until every request sent has an outcome (give-up timers bound this anyway)."""
    flood.sending_done = True
    if flood.in_flight == 0:
        return
    with suppress(TimeoutError):
        async with asyncio.timeout(patience):
            await flood.all_answered.wait()


def use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_flood_sync(config: FloodConfig) -> FloodResult:
    """Run one generator on uvloop in this process (the entry point of generator processes)."""
    if config.cpu_affinity is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(config.cpu_affinity))
    use_uvloop()
    return asyncio.run(run_flood(config))


def split_config(
    config: FloodConfig, processes: int, cpus: Sequence[int] = ()
) -> list[FloodConfig]:
    """One config per generator process: a share of the rate, clients and connections each.

    Citizens are split into disjoint ranges so that no two processes sign as the same person.
    With ``cpus``, process ``i`` is pinned to ``cpus[i % len(cpus)]``.
    """
    citizens_each = math.ceil(config.rate / processes * config.duration * 1.5) + 1000
    clients_each = max(1, config.clients // processes)
    # Long enough for spawn, imports, the schedule and the tokens in every process.
    start_at = time.time() + 3.0 + citizens_each * 40e-6
    return [
        replace(
            config,
            rate=config.rate / processes,
            clients=clients_each,
            max_connections=max(1, config.connection_pool // processes),
            citizen_offset=config.citizen_offset + index * citizens_each,
            first_client=config.first_client + index * clients_each,
            seed=config.seed + index,
            start_at=start_at,
            cpu_affinity=(cpus[index % len(cpus)],) if cpus else config.cpu_affinity,
        )
        for index in range(processes)
    ]


def run_flood_processes(
    config: FloodConfig, processes: int = 1, cpus: Sequence[int] = ()
) -> FloodResult:
    """Split the rate over several generator processes (on ``cpus``) and merge what they saw."""
    if processes <= 1:
        return run_flood_sync(config)
    configs = split_config(config, processes, cpus)
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        return merge_results(pool.map(run_flood_sync, configs))


# ---------------------------------------------------------------------------------------------
# Reporting and the command line


def format_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def format_flood_report(result: FloodResult) -> str:
    """A human summary of one run, every figure taken from the result."""
    totals = result.outcome_totals
    sent_line = (
        f"really offered      {result.really_offered_rate:.0f}/s ({result.sent} sent of"
        f" {result.scheduled} due; {result.not_sent} not sent"
    )
    if result.pool_bound:
        sent_line += f": the generator's pool of {result.connection_pool} connections BOUND"
    sent_line += ")"
    per_connection = result.requests_per_connection or "unlimited"
    lines = [
        f"intended rate       {result.offered_rate:.0f}/s for {result.duration:g} s"
        f" ({result.processes} generator process(es), give-up {result.give_up:g} s,"
        f" SLO {result.slo * 1000:g} ms)",
        sent_line,
        f"generator lag       p50 {format_ms(result.lag_percentile(50))} ms,"
        f" p99 {format_ms(result.lag_percentile(99))} ms"
        + ("" if result.kept_schedule else "  ** GENERATOR FELL BEHIND SCHEDULE **"),
        f"connections         {result.connections_opened} opened;"
        f" {result.on_new_connection} requests rode on a new connection"
        f" ({100 * result.new_connection_share:.0f}% of those sent)"
        f" (at most {per_connection} requests per connection)",
        f"goodput             {result.goodput:.0f}/s (2xx within the SLO of the intended time;"
        f" {100 * result.good_share():.1f}% of the requests due)",
        f"2xx                 {totals['2xx']}, p50"
        f" {format_ms(result.latency_percentile('2xx', 50))} ms, p99"
        f" {format_ms(result.latency_percentile('2xx', 99))} ms",
    ]
    for label in ("429", "503"):
        lines.append(
            f"{label}                 {totals[label]}, p50"
            f" {format_ms(result.latency_percentile(label, 50))} ms, p99"
            f" {format_ms(result.latency_percentile(label, 99))} ms"
        )
    lines.append(f"without Retry-After {result.missing_retry_after} of the 429/503")
    lines.append(
        f"never answered      {result.unanswered} (timed out at the {result.give_up:g} s"
        " give-up, reset, or not connected)"
    )
    lines.append(f"other 5xx           {totals['other_5xx']}")
    lines.append("all outcomes        " + ", ".join(f"{k}={v}" for k, v in totals.items() if v))
    for kind, outcomes in result.counts.items():
        lines.append(f"  {kind:<17} " + ", ".join(f"{k}={v}" for k, v in outcomes.items()))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.flood", description="Open-loop HTTP flood generator."
    )
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--rate", type=float, required=True, help="requests per second offered")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument(
        "--mix",
        default="read=90,sign=10",
        help="name=weight,...: read, sign, list, hello or METHOD:/path",
    )
    parser.add_argument("--petition-id", help="the petition that 'read' and 'sign' target")
    parser.add_argument(
        "--setup",
        action="store_true",
        help="create and approve a petition first (needs QATYSU_JWT_SECRET)",
    )
    parser.add_argument("--give-up", type=float, default=DEFAULT_GIVE_UP, help="seconds")
    parser.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson")
    parser.add_argument("--clients", type=int, default=2048, help="distinct source addresses")
    parser.add_argument(
        "--max-connections",
        type=int,
        help="the generator's connection cap (default: rate x give-up x 1.5 + 256)",
    )
    parser.add_argument(
        "--requests-per-connection",
        type=int,
        default=3,
        help="a citizen's connection closes after this many requests (0: keep-alive forever)",
    )
    parser.add_argument("--slo", type=float, default=DEFAULT_SLO, help="seconds, for goodput")
    parser.add_argument("--processes", type=int, default=1, help="generator processes")
    parser.add_argument(
        "--citizen-offset",
        type=int,
        default=0,
        help="first synthetic citizen number (use new ones for each run)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the summary to this file")
    return parser


def config_from_args(args: argparse.Namespace, petition_id: str | None) -> FloodConfig:
    return FloodConfig(
        url=args.url.rstrip("/"),
        rate=args.rate,
        duration=args.duration,
        mix=parse_mix(args.mix, petition_id),
        give_up=args.give_up,
        arrivals=args.arrivals,
        clients=args.clients,
        max_connections=args.max_connections,
        requests_per_connection=args.requests_per_connection,
        slo=args.slo,
        jwt_secret=os.environ.get("QATYSU_JWT_SECRET"),
        citizen_offset=args.citizen_offset,
        seed=args.seed,
    )


def main(argv: list[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    args = build_parser().parse_args(argv)
    petition_id = args.petition_id
    if args.setup:
        from loadtests.seeding import create_approved_petition, secret_from_env

        petition_id = create_approved_petition(args.url, secret_from_env())
        out(f"created and approved petition {petition_id}")
    config = config_from_args(args, petition_id)
    result = run_flood_processes(config, args.processes)
    out(format_flood_report(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(result.summary(), file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
