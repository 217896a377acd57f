"""``python -m loadtests.bench watchers``: N watchers of one petition, streaming vs polling.

Two instances share a fresh PostgreSQL database and a private Redis. One petition is watched by
``--watchers`` streams on each instance (``GET /api/v1/petitions/{id}/live``) while signatures
arrive at ``--sign-rate`` a second, spread over both instances. Measured, in this run:

* RSS per open stream: each instance's RSS with its streams open, less its RSS before, over N;
* CPU per delivered event per watcher: the instances' CPU time over the window, over the events
  the watchers received in it;
* commit-to-event lag, p50 and p99 across instances: from the 201 of the signature that made a
  count to each watcher's receipt of an event carrying that count (or a later one);
* whether any watcher ever saw a count go down;
* signing throughput (a closed loop of signers) with the streams open, against none open;
* the polling alternative beside it: the same watchers, each on a kept-alive connection, reading
  ``GET /api/v1/petitions/{id}`` once per interval (through the fast lane), for the same window.

The generator is one process of raw asyncio protocols (uvloop when installed), pinned to the
other core; it raises its own file limit, which the instances inherit. N is per instance, and
is lowered to what that limit allows, which the report says.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import resource
import time
from dataclasses import dataclass, field
from typing import Any

from loadtests.eventloop import use_uvloop
from loadtests.instances import (
    FreshDatabase,
    PrivateRedis,
    migrate,
    postgres_admin_url,
    qatysu_instance,
)
from loadtests.options import add_duration
from loadtests.report import Out, markdown_table, ms
from loadtests.seeding import citizen_token, create_approved_petition
from loadtests.servers import (
    BENCH_SECRET_ENV,
    SERVER_CPU,
    ManagedServer,
    bench_workdir,
    cpu_seconds,
    rss_bytes,
)

TOPOLOGY = (
    "servers: two instances, each one process, both on core 0 (taskset), sharing PostgreSQL"
    " (fresh database) and a private Redis; access log off; the government threshold raised"
    " to 10^9; the generator on core 1"
)
# Sockets the generator keeps besides its watchers (signers, files, the loop).
_SPARE_FDS = 400
OPEN_BATCH = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--watchers", type=int, default=10_000, help="streams per instance")
    parser.add_argument("--sign-rate", type=float, default=20.0, help="signatures a second")
    add_duration(parser, 20.0, help="measured seconds a phase")
    parser.add_argument("--interval", type=float, default=1.0, help="live/polling interval, s")
    parser.add_argument("--signers", type=int, default=32, help="closed-loop signers")
    parser.add_argument("--throughput-seconds", type=float, default=6.0)


# -- process figures --------------------------------------------------------------------------


def raise_fd_limit() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- the watchers -----------------------------------------------------------------------------


@dataclass
class Tally:
    """What every watcher of one kind saw."""

    events: int = 0
    went_down: int = 0
    opened: int = 0
    failed: int = 0
    counting: bool = False
    made: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    # Every (count, time received) of a sample of watchers, for the lag.
    sampled: list[list[tuple[int, float]]] = field(default_factory=list)

    def saw(self, count: int, previous: int, record: list[tuple[int, float]] | None) -> None:
        if count < previous:
            self.went_down += 1
        if not self.counting:
            return
        self.events += 1
        if record is not None:
            record.append((count, time.time()))

    def recorder(self, every: int = 50) -> list[tuple[int, float]] | None:
        """A record for one watcher in ``every``."""
        self.made += 1
        if (self.made - 1) % every:
            return None
        record: list[tuple[int, float]] = []
        self.sampled.append(record)
        return record


def commit_lags(
    sampled: list[list[tuple[int, float]]], commits: dict[int, float], since: float, until: float
) -> list[float]:
    """For each commit in the window and each sampled watcher: from the commit's 201 to the
    first event the watcher received carrying that count or a later one."""
    lags = []
    window = sorted((c, t) for c, t in commits.items() if since <= t <= until)
    for record in sampled:
        counts = [count for count, _ in record]
        for count, committed in window:
            at = bisect.bisect_left(counts, count)
            if at < len(record):
                lags.append(max(0.0, record[at][1] - committed))
    return lags


_COUNT = b'"signature_count":'


def counts_in(data: bytes) -> list[int]:
    found, start = [], 0
    while (at := data.find(_COUNT, start)) >= 0:
        at += len(_COUNT)
        end = at
        while end < len(data) and data[end : end + 1].isdigit():
            end += 1
        if end > at:
            found.append(int(data[at:end]))
        start = end
    return found


class StreamWatcher(asyncio.Protocol):
    """One ``/live`` stream: counts each event, checks that counts never go down."""

    def __init__(self, head: bytes, tally: Tally, first: asyncio.Future[None]) -> None:
        self.head, self.tally, self.first = head, tally, first
        self.buffer = b""
        self.last = -1
        self.record = tally.recorder()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.head)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.first.done():
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 200"):
                status = self.buffer[9:12].decode("latin-1")
                self.tally.statuses[status] = self.tally.statuses.get(status, 0) + 1
                self.first.set_result(None)
                return
            self.first.set_result(None)
        end = self.buffer.rfind(b"\n\n")
        if end < 0:
            return
        whole, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
        for count in counts_in(whole):
            self.tally.saw(count, self.last, self.record)
            self.last = max(self.last, count)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.first.done():
            self.first.set_result(None)

    @property
    def streaming(self) -> bool:
        return self.last >= 0 and self.transport is not None and not self.transport.is_closing()


class Poller(asyncio.Protocol):
    """One kept-alive connection reading the petition once per interval."""

    def __init__(self, head: bytes, tally: Tally) -> None:
        self.head, self.tally = head, tally
        self.buffer = b""
        self.last = -1
        self.transport: asyncio.Transport | None = None
        self.answered = 0
        self.record = tally.recorder()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def poll(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.head)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 : head.find(b"\r\n", at)]) if at >= 0 else 0
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            self.answered += 1
            for count in counts_in(body):
                self.tally.saw(count, self.last, self.record)
                self.last = max(self.last, count)


# -- signers ----------------------------------------------------------------------------------


class Signers:
    """Citizens signing the petition over both instances, each a new citizen."""

    def __init__(self, secret: str, ports: list[int], petition_id: str) -> None:
        self.secret, self.ports, self.petition_id = secret, ports, petition_id
        self.next_citizen = 1
        self.commits: dict[int, float] = {}
        self.created = 0
        self.errors = 0

    async def sign_one(self, session: Any) -> None:
        # aiohttp takes 0.3 s to import; this module is imported by the benchmark, whose spawned
        # generator processes import it again, so only a watchers run pays for it.
        import aiohttp

        number = self.next_citizen
        self.next_citizen += 1
        port = self.ports[number % len(self.ports)]
        token = citizen_token(self.secret, 500_000_000 + number)
        try:
            async with session.post(
                f"http://127.0.0.1:{port}/api/v1/petitions/{self.petition_id}/signatures",
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                body = await response.json()
                if response.status == 201:
                    self.created += 1
                    count = int(body["signature_count"])
                    self.commits.setdefault(count, time.time())
                else:
                    self.errors += 1
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.errors += 1

    async def steady(self, session: Any, rate: float, seconds: float) -> None:
        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate) + 1
            while sent < due:
                task = asyncio.create_task(self.sign_one(session))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.01)
        if tasks:
            await asyncio.gather(*tasks)

    async def closed_loop(self, session: Any, signers: int, seconds: float) -> float:
        """Signatures created a second by ``signers`` signing back to back."""
        before = self.created
        stop_at = time.monotonic() + seconds
        start = time.monotonic()

        async def loop() -> None:
            while time.monotonic() < stop_at:
                await self.sign_one(session)

        await asyncio.gather(*(loop() for _ in range(signers)))
        return (self.created - before) / (time.monotonic() - start)


# -- the run ----------------------------------------------------------------------------------


def _instance_env(watchers: int, interval: float) -> dict[str, str]:
    generous = {"rate": 1_000_000.0, "burst": 1_000_000}
    return {
        "QATYSU_SERVER__MAX_CONNECTIONS": str(watchers + 2_000),
        "QATYSU_PETITIONS__LIVE_MAX_STREAMS": str(watchers + 100),
        "QATYSU_PETITIONS__LIVE_MAX_STREAMS_PER_ADDRESS": str(watchers + 100),
        "QATYSU_PETITIONS__LIVE_INTERVAL_SECONDS": str(interval),
        # Every watcher comes from one loopback address here; a real crowd has many.
        "QATYSU_ADMISSION__RATE_OVERRIDES": json.dumps(
            {"petition-live": generous, "public-read": generous, "petition-sign": generous}
        ),
    }


async def _open_streams(
    ports: list[int], petition_id: str, per_instance: int, tally: Tally, *, patience: float = 180.0
) -> list[StreamWatcher]:
    """Open ``per_instance`` streams on each port; a refused one retries after a second, as a
    client honouring ``Retry-After`` would, until ``patience`` runs out."""
    loop = asyncio.get_running_loop()
    watchers: list[StreamWatcher] = []
    give_up = time.monotonic() + patience
    for port in ports:
        head = (
            f"GET /api/v1/petitions/{petition_id}/live HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        opened = 0
        while opened < per_instance and time.monotonic() < give_up:
            batch = min(OPEN_BATCH, per_instance - opened)
            firsts = [loop.create_future() for _ in range(batch)]
            made = await asyncio.gather(
                *(
                    loop.create_connection(
                        lambda f=first, h=head: StreamWatcher(h, tally, f), "127.0.0.1", port
                    )
                    for first in firsts
                ),
                return_exceptions=True,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*firsts), timeout=30)
            # The first event follows the head at once.
            await asyncio.sleep(0.05)
            refused = 0
            for result in made:
                if isinstance(result, BaseException):
                    refused += 1
                    continue
                transport, watcher = result
                if watcher.streaming:
                    watchers.append(watcher)
                    opened += 1
                else:
                    transport.close()
                    refused += 1
            if refused:
                await asyncio.sleep(1.0)
    tally.opened = len(watchers)
    tally.failed = len(ports) * per_instance - len(watchers)
    return watchers


async def _open_pollers(
    ports: list[int], petition_id: str, per_instance: int, tally: Tally
) -> list[Poller]:
    loop = asyncio.get_running_loop()
    pollers: list[Poller] = []
    for port in ports:
        head = (
            f"GET /api/v1/petitions/{petition_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        ).encode()
        for start in range(0, per_instance, OPEN_BATCH):
            batch = min(OPEN_BATCH, per_instance - start)
            made = await asyncio.gather(
                *(
                    loop.create_connection(lambda h=head: Poller(h, tally), "127.0.0.1", port)
                    for _ in range(batch)
                ),
                return_exceptions=True,
            )
            for result in made:
                if isinstance(result, BaseException):
                    tally.failed += 1
                else:
                    pollers.append(result[1])  # type: ignore[arg-type]
    return pollers


async def _poll_loop(pollers: list[Poller], interval: float, seconds: float) -> None:
    """Each poller once per interval, spread evenly over it."""
    if not pollers:
        return
    step = interval / len(pollers)
    start = time.monotonic()
    index = 0
    while time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) / step)
        while index < due:
            pollers[index % len(pollers)].poll()
            index += 1
        await asyncio.sleep(0.005)


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _measure(
    servers: list[ManagedServer], args: argparse.Namespace, secret: str, out: Out
) -> dict[str, Any]:
    import aiohttp  # 0.3 s to import: see sign_one

    ports = [server.port for server in servers]
    pids = [server.pid for server in servers]
    petition_id = create_approved_petition(servers[0].url, secret)
    connector = aiohttp.TCPConnector(limit=args.signers * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        signers = Signers(secret, ports, petition_id)
        await signers.steady(session, args.sign_rate, 2.0)  # warm-up
        await signers.closed_loop(session, args.signers, 2.0)  # warm-up
        throughput_none = await signers.closed_loop(session, args.signers, args.throughput_seconds)
        out(f"signing, no watchers: {throughput_none:.0f}/s")

        await asyncio.sleep(2.0)
        cpu_before = cpu_seconds(pids)
        started = time.monotonic()
        await signers.steady(session, args.sign_rate, args.duration)
        await asyncio.sleep(args.interval * 2)
        base_cpu_per_second = (cpu_seconds(pids) - cpu_before) / (time.monotonic() - started)
        out(f"signing alone at {args.sign_rate:g}/s: {base_cpu_per_second:.3f} CPU s/s")
        rss_before = [rss_bytes(pid) or 0 for pid in pids]
        stream = Tally()
        watchers = await _open_streams(ports, petition_id, args.watchers, stream)
        await asyncio.sleep(2.0)
        rss_after = [rss_bytes(pid) or 0 for pid in pids]
        out(
            f"streams open: {stream.opened} (not opened {stream.failed}; refusals on the way,"
            f" retried: {stream.statuses})"
        )

        stream.counting = True
        cpu_before = cpu_seconds(pids)
        started = time.monotonic()
        stream_from = time.time()
        await signers.steady(session, args.sign_rate, args.duration)
        stream_until = time.time()
        await asyncio.sleep(args.interval * 2)
        stream_window = time.monotonic() - started
        stream_cpu = cpu_seconds(pids) - cpu_before
        stream.counting = False
        out(f"stream phase: {stream.events} events, {stream_cpu:.2f} s CPU")

        throughput_open = await signers.closed_loop(session, args.signers, args.throughput_seconds)
        out(f"signing, {stream.opened} watchers open: {throughput_open:.0f}/s")
        for watcher in watchers:
            if watcher.transport is not None:
                watcher.transport.close()
        await asyncio.sleep(3.0)
        throughput_after = await signers.closed_loop(session, args.signers, args.throughput_seconds)
        out(f"signing, no watchers again: {throughput_after:.0f}/s")
        throughput_none = (throughput_none + throughput_after) / 2
        await asyncio.sleep(2.0)

        poll = Tally()
        pollers = await _open_pollers(ports, petition_id, args.watchers, poll)
        await asyncio.sleep(1.0)
        poll.counting = True
        cpu_before = cpu_seconds(pids)
        started = time.monotonic()
        poll_from = time.time()
        await asyncio.gather(
            signers.steady(session, args.sign_rate, args.duration),
            _poll_loop(pollers, args.interval, args.duration),
        )
        poll_until = time.time()
        await asyncio.sleep(args.interval)
        poll_window = time.monotonic() - started
        poll_cpu = cpu_seconds(pids) - cpu_before
        poll.counting = False
        answered = sum(p.answered for p in pollers)
        out(f"polling phase: {answered} answers, {poll_cpu:.2f} s CPU")
        for poller in pollers:
            if poller.transport is not None:
                poller.transport.close()

    stream_lags = commit_lags(stream.sampled, signers.commits, stream_from, stream_until)
    poll_lags = commit_lags(poll.sampled, signers.commits, poll_from, poll_until)
    opened = max(1, stream.opened)
    stream_marginal = stream_cpu / stream_window - base_cpu_per_second
    poll_marginal = poll_cpu / poll_window - base_cpu_per_second
    rss_per_stream = (sum(rss_after) - sum(rss_before)) / opened
    return {
        "petition_id": petition_id,
        "watchers_per_instance": args.watchers,
        "streams_opened": stream.opened,
        "streams_failed": stream.failed,
        "rss_before_mib": [round(r / 2**20, 1) for r in rss_before],
        "rss_after_mib": [round(r / 2**20, 1) for r in rss_after],
        "rss_per_stream_kib": round(rss_per_stream / 1024, 2),
        "stream_events": stream.events,
        "stream_cpu_seconds": round(stream_cpu, 3),
        "stream_window_seconds": round(stream_window, 2),
        "stream_cpu_per_event_us": round(stream_cpu / max(1, stream.events) * 1e6, 2),
        "stream_cpu_per_second": round(stream_cpu / stream_window, 3),
        "lag_p50_ms": ms(_percentile(stream_lags, 0.50)),
        "lag_p99_ms": ms(_percentile(stream_lags, 0.99)),
        "lag_samples": len(stream_lags),
        "poll_lag_p50_ms": ms(_percentile(poll_lags, 0.50)),
        "poll_lag_p99_ms": ms(_percentile(poll_lags, 0.99)),
        "stream_counts_went_down": stream.went_down,
        "poll_answers": answered,
        "poll_cpu_seconds": round(poll_cpu, 3),
        "poll_window_seconds": round(poll_window, 2),
        "poll_cpu_per_answer_us": round(poll_cpu / max(1, answered) * 1e6, 2),
        "poll_cpu_per_second": round(poll_cpu / poll_window, 3),
        "poll_counts_went_down": poll.went_down,
        "base_cpu_per_second": round(base_cpu_per_second, 3),
        "stream_marginal_cpu_per_event_us": round(
            stream_marginal * stream_window / max(1, stream.events) * 1e6, 2
        ),
        "poll_marginal_cpu_per_answer_us": round(
            poll_marginal * poll_window / max(1, answered) * 1e6, 2
        ),
        "marginal_stream_to_poll_cpu_ratio": round(stream_marginal / max(1e-9, poll_marginal), 3),
        "stream_to_poll_cpu_ratio": round(
            (stream_cpu / stream_window) / max(1e-9, poll_cpu / poll_window), 3
        ),
        "signing_no_watchers_per_s": round(throughput_none, 1),
        "signing_with_watchers_per_s": round(throughput_open, 1),
        "signing_ratio": round(throughput_open / max(1e-9, throughput_none), 3),
        "signatures_created": signers.created,
        "signing_errors": signers.errors,
    }


def run_watchers(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    limit = raise_fd_limit()
    allowed = max(1, (limit - _SPARE_FDS) // 2)
    if args.watchers > allowed:
        out(f"file limit {limit}: {args.watchers} watchers per instance lowered to {allowed}")
        args.watchers = allowed
    use_uvloop()
    secret = BENCH_SECRET_ENV["QATYSU_JWT_SECRET"]
    workdir = bench_workdir()
    database = FreshDatabase.create(postgres_admin_url(), prefix="qatysu_watchers")
    redis = PrivateRedis.start(workdir)
    servers: list[ManagedServer] = []
    try:
        migrate(database.url, workdir)
        for name in ("a", "b"):
            server = qatysu_instance(
                name=name,
                workdir=workdir,
                database_url=database.url,
                redis_url=redis.url,
                cpu=SERVER_CPU,
                extra_env=_instance_env(args.watchers, args.interval),
            )
            servers.append(server.start())
        figures = asyncio.run(_measure(servers, args, secret, out))
    finally:
        for server in servers:
            server.stop()
        redis.stop()
        database.drop()
    figures["file_limit"] = limit
    _report(figures, out)
    return {"watchers": figures}


def _report(f: dict[str, Any], out: Out) -> None:
    rows = [
        ["open streams (2 instances)", f["streams_opened"], "10,000 per process"],
        ["RSS per open stream", f"{f['rss_per_stream_kib']} KiB", "<= 30 KiB"],
        ["stream: CPU per event per watcher", f"{f['stream_cpu_per_event_us']} us", ""],
        ["polling: CPU per answer", f"{f['poll_cpu_per_answer_us']} us", ""],
        ["stream: CPU per event per watcher, beyond signing alone",
         f"{f['stream_marginal_cpu_per_event_us']} us", ""],
        ["polling: CPU per answer, beyond signing alone",
         f"{f['poll_marginal_cpu_per_answer_us']} us", ""],
        ["stream CPU / polling CPU, whole servers", f["stream_to_poll_cpu_ratio"], "<= 0.5"],
        ["stream CPU / polling CPU, beyond signing alone",
         f["marginal_stream_to_poll_cpu_ratio"], "<= 0.5"],
        ["commit-to-event lag p50", f"{f['lag_p50_ms']} ms", ""],
        ["commit-to-event lag p99", f"{f['lag_p99_ms']} ms", "<= 2000 ms"],
        ["polling: commit-to-read lag p50, p99",
         f"{f['poll_lag_p50_ms']} ms, {f['poll_lag_p99_ms']} ms", ""],
        ["counts that went down (stream, polling)",
         f"{f['stream_counts_went_down']}, {f['poll_counts_went_down']}", "0"],
        ["signing with watchers / without", f["signing_ratio"], ">= 0.9"],
    ]  # fmt: skip
    out("")
    out(markdown_table(["figure", "measured", "target"], rows))
