"""``python -m loadtests.bench watchers``: N watchers of one petition, streaming vs polling.

Two instances share a fresh PostgreSQL database and a private Redis. One petition is watched by
``--watchers`` streams on each instance (``GET /api/v1/petitions/{id}/live``) while signatures
arrive at ``--sign-rate`` a second, spread over both instances. Measured, in this run:

* RSS per open stream: each instance's RSS with its streams open, less its RSS before, over N;
* CPU per delivered event per watcher: the instances' CPU time over the window (user and
  system apart), over the events the watchers received in it;
* commit-to-event lag, p50 and p99 across instances: from the 201 of the signature that made a
  count to each watcher's receipt of an event carrying that count (or a later one);
* whether any watcher ever saw a count go down;
* signing throughput (a closed loop of signers) with the streams open, against none open before
  and after;
* the polling alternative beside it: the same watchers, each on a kept-alive connection, reading
  ``GET /api/v1/petitions/{id}`` once per interval (through the fast lane), for the same window.

The watchers live in client processes (``loadtests.watcher_clients``) pinned to the other core,
as many as their file limit requires; the main process signs. Every process raises its soft
open-files limit to what it needs, up to the hard limit, and the instances inherit the main
process's; when the hard limit is too low the report says so, and N is lowered to fit.

``--repeat`` measures that many times, and ``--server-tree`` (repeatable) runs the instances
from other source trees, interleaved with this one (A, B, A, B, ...), so that a change is
measured side by side with what it replaces; the report gives every run, the median and the
spread of each figure, by tree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from loadtests.instances import (
    FreshDatabase,
    PrivateRedis,
    migrate,
    postgres_admin_url,
    qatysu_instance,
)
from loadtests.options import add_duration, add_instance_count, add_repeat
from loadtests.report import markdown_table
from loadtests.seeding import citizen_token, create_approved_petition
from loadtests.servers import BENCH_SECRET_ENV, REPO_ROOT, ManagedServer, bench_workdir
from loadtests.watcher_clients import (
    SPARE_FDS,
    ClientPool,
    FileLimit,
    Tally,
    commit_lags,
    file_limit_of,
    raise_file_limit,
    split,
)

SERVER_CPU = 0
CLIENT_CPU = 1
TOPOLOGY = (
    "servers: two instances, each one process, both on core 0 (taskset), sharing PostgreSQL"
    " (fresh database) and a private Redis; access log off; the government threshold raised"
    " to 10^9; the signers on core 1 with the watchers in client processes on core 1"
)
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
# Descriptors an instance keeps besides its watchers' sockets (signers, the database pool,
# Redis, logs, the listening socket), with room to spare.
SERVER_SPARE_FDS = 1_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--watchers", type=int, default=10_000, help="streams per instance")
    parser.add_argument("--sign-rate", type=float, default=20.0, help="signatures a second")
    add_duration(parser, 20.0, help="measured seconds a phase")
    parser.add_argument("--interval", type=float, default=1.0, help="live/polling interval, s")
    parser.add_argument("--signers", type=int, default=32, help="closed-loop signers")
    parser.add_argument("--throughput-seconds", type=float, default=6.0)
    parser.add_argument(
        "--per-client", type=int, default=10_000, help="most watchers in one client process"
    )
    add_repeat(parser, 1, "measurements per server tree")
    parser.add_argument(
        "--server-tree",
        action="append",
        default=[],
        type=Path,
        help="also run the instances from this source tree, interleaved (repeatable)",
    )
    parser.add_argument("--no-polling", action="store_true", help="skip the polling phase")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help="seconds between one watcher's polls (default: --interval); longer keeps the"
        " polling instances under saturation, for the CPU per answer",
    )
    add_instance_count(
        parser, "instances sharing Redis (1: the watchers and the signing of one process alone)"
    )


# -- process figures --------------------------------------------------------------------------


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _CLK_TCK, int(fields[12]) / _CLK_TCK


def cpu_of(pids: list[int]) -> tuple[float, float]:
    user = system = 0.0
    for pid in pids:
        u, s = cpu_split(pid)
        user, system = user + u, system + s
    return user, system


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


class CpuWindow:
    """The instances' CPU over a window of wall time."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.started = time.monotonic()
        self.user0, self.system0 = cpu_of(pids)

    def stop(self) -> tuple[float, float, float]:
        """Seconds of wall time, user and system CPU since the start."""
        user, system = cpu_of(self.pids)
        return time.monotonic() - self.started, user - self.user0, system - self.system0


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


class CoreWindow:
    """How busy each core was over a window of wall time (``/proc/stat``), 0 to 1."""

    def __init__(self) -> None:
        self.start = _core_ticks()

    def stop(self) -> list[float]:
        end = _core_ticks()
        shares = []
        for (busy0, total0), (busy1, total1) in zip(self.start, end, strict=True):
            shares.append((busy1 - busy0) / max(1, total1 - total0))
        return shares


def _core_ticks() -> list[tuple[int, int]]:
    """(busy, total) ticks of each core: idle and iowait are not busy."""
    ticks = []
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + values[4]
            ticks.append((sum(values) - idle, sum(values)))
    return ticks


def _percent(shares: list[float]) -> str:
    return ", ".join(f"core {i} {share:.0%}" for i, share in enumerate(shares))


# -- one measurement ----------------------------------------------------------------------------


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


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _merge(answers: list[dict[str, Any]], kind: str) -> Tally:
    tally = Tally()
    for answer in answers:
        tally.events += answer[kind]["events"]
        tally.went_down += answer[kind]["went_down"]
        tally.sampled.extend(answer[kind]["sampled"])
    return tally


async def _measure(
    servers: list[ManagedServer],
    pool: ClientPool,
    shares: list[tuple[int, int]],
    args: argparse.Namespace,
    secret: str,
    out: Any,
) -> dict[str, Any]:
    """One measurement on running instances; ``shares``: (instance, watchers) per client."""
    import aiohttp

    ports = [server.port for server in servers]
    pids = [server.pid for server in servers]
    petition_id = create_approved_petition(servers[0].url, secret)
    connector = aiohttp.TCPConnector(limit=args.signers * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        signers = Signers(secret, ports, petition_id)
        await signers.steady(session, args.sign_rate, 2.0)  # warm-up
        await signers.closed_loop(session, args.signers, 2.0)  # warm-up
        cores = CoreWindow()
        throughput_none = await signers.closed_loop(session, args.signers, args.throughput_seconds)
        busy_none = cores.stop()
        out(f"signing, no watchers: {throughput_none:.0f}/s (cores busy: {_percent(busy_none)})")

        await asyncio.sleep(2.0)
        window = CpuWindow(pids)
        await signers.steady(session, args.sign_rate, args.duration)
        await asyncio.sleep(args.interval * 2)
        seconds, user, system = window.stop()
        base_cpu_per_second = (user + system) / seconds
        out(f"signing alone at {args.sign_rate:g}/s: {base_cpu_per_second:.3f} CPU s/s")

        rss_before = [rss_bytes(pid) for pid in pids]
        opened_at = time.monotonic()
        # One client at a time: a crowd of new streams at once is refused as an overload.
        answers = await pool.one_by_one(
            [("streams", ports[i], petition_id, n, 600.0) for i, n in shares]
        )
        open_seconds = time.monotonic() - opened_at
        await asyncio.sleep(2.0)
        rss_after = [rss_bytes(pid) for pid in pids]
        opened = sum(a["opened"] for a in answers)
        statuses: dict[str, int] = {}
        for answer in answers:
            for status, times in answer["statuses"].items():
                statuses[status] = statuses.get(status, 0) + times
        wanted = sum(n for _, n in shares)
        out(
            f"streams open: {opened} of {wanted} in {open_seconds:.1f} s (refusals on the way,"
            f" retried: {statuses})"
        )

        await pool.all("counting", True)
        window = CpuWindow(pids)
        stream_from = time.time()
        await signers.steady(session, args.sign_rate, args.duration)
        stream_until = time.time()
        await asyncio.sleep(args.interval * 2)
        stream_seconds, stream_user, stream_system = window.stop()
        answers = await pool.all("counting", False)
        stream = _merge(answers, "stream")
        still_open = sum(a["streaming"] for a in answers)
        stream_cpu = stream_user + stream_system
        out(
            f"stream phase: {stream.events} events, {stream_cpu:.2f} s CPU"
            f" ({stream_user:.2f} user, {stream_system:.2f} system); {still_open} still open"
        )

        await pool.all("quiet", True)
        cores = CoreWindow()
        throughput_open = await signers.closed_loop(session, args.signers, args.throughput_seconds)
        busy_open = cores.stop()
        await pool.all("quiet", False)
        out(
            f"signing, {opened} watchers open: {throughput_open:.0f}/s"
            f" (cores busy: {_percent(busy_open)})"
        )
        await pool.all("close", "streams")
        await asyncio.sleep(3.0)
        cores = CoreWindow()
        throughput_after = await signers.closed_loop(session, args.signers, args.throughput_seconds)
        busy_after = cores.stop()
        out(
            f"signing, no watchers again: {throughput_after:.0f}/s"
            f" (cores busy: {_percent(busy_after)})"
        )
        throughput_mean = (throughput_none + throughput_after) / 2
        await asyncio.sleep(2.0)

        poll = Tally()
        answered = 0
        poll_cpu = poll_seconds = 0.0
        poll_from = poll_until = 0.0
        if not args.no_polling:
            await pool.each([("pollers", ports[i], petition_id, n) for i, n in shares])
            await asyncio.sleep(1.0)
            await pool.all("counting", True)
            window = CpuWindow(pids)
            poll_from = time.time()
            await asyncio.gather(
                signers.steady(session, args.sign_rate, args.duration),
                pool.all("poll", args.poll_interval or args.interval, args.duration),
            )
            poll_until = time.time()
            await asyncio.sleep(args.interval)
            poll_seconds, user, system = window.stop()
            poll_cpu = user + system
            answers = await pool.all("counting", False)
            poll = _merge(answers, "poll")
            answered = poll.events
            out(f"polling phase: {answered} answers, {poll_cpu:.2f} s CPU")
            await pool.all("close", "pollers")

    stream_lags = commit_lags(stream.sampled, signers.commits, stream_from, stream_until)
    poll_lags = commit_lags(poll.sampled, signers.commits, poll_from, poll_until)
    events = max(1, stream.events)
    stream_per_second = stream_cpu / stream_seconds
    poll_per_second = poll_cpu / poll_seconds if poll_seconds else None
    stream_marginal = stream_per_second - base_cpu_per_second
    poll_marginal = None if poll_per_second is None else poll_per_second - base_cpu_per_second
    figures: dict[str, Any] = {
        "petition_id": petition_id,
        "streams_wanted": wanted,
        "streams_opened": opened,
        "streams_open_at_end": still_open,
        "server_file_limits": [file_limit_of(pid) for pid in pids],
        "rss_before_mib": [round(r / 2**20, 1) for r in rss_before],
        "rss_after_mib": [round(r / 2**20, 1) for r in rss_after],
        "rss_per_stream_kib": round((sum(rss_after) - sum(rss_before)) / max(1, opened) / 1024, 2),
        "stream_events": stream.events,
        "stream_cpu_seconds": round(stream_cpu, 3),
        "stream_user_seconds": round(stream_user, 3),
        "stream_system_seconds": round(stream_system, 3),
        "stream_window_seconds": round(stream_seconds, 2),
        "stream_cpu_per_event_us": round(stream_cpu / events * 1e6, 2),
        "stream_user_per_event_us": round(stream_user / events * 1e6, 2),
        "stream_system_per_event_us": round(stream_system / events * 1e6, 2),
        "stream_marginal_cpu_per_event_us": round(
            stream_marginal * stream_seconds / events * 1e6, 2
        ),
        "stream_cpu_per_second": round(stream_per_second, 3),
        "base_cpu_per_second": round(base_cpu_per_second, 3),
        "lag_p50_ms": _ms(_percentile(stream_lags, 0.50)),
        "lag_p99_ms": _ms(_percentile(stream_lags, 0.99)),
        "lag_samples": len(stream_lags),
        "stream_counts_went_down": stream.went_down,
        "signing_no_watchers_before_per_s": round(throughput_none, 1),
        "signing_no_watchers_after_per_s": round(throughput_after, 1),
        "signing_with_watchers_per_s": round(throughput_open, 1),
        "signing_ratio": round(throughput_open / max(1e-9, throughput_mean), 3),
        "cores_busy_signing_without": [round(b, 3) for b in busy_none],
        "cores_busy_signing_with": [round(b, 3) for b in busy_open],
        "cores_busy_signing_after": [round(b, 3) for b in busy_after],
        "signatures_created": signers.created,
        "signing_errors": signers.errors,
    }
    if poll_per_second is not None and poll_marginal is not None:
        figures.update(
            {
                "poll_answers": answered,
                "poll_cpu_seconds": round(poll_cpu, 3),
                "poll_window_seconds": round(poll_seconds, 2),
                "poll_cpu_per_answer_us": round(poll_cpu / max(1, answered) * 1e6, 2),
                "poll_marginal_cpu_per_answer_us": round(
                    poll_marginal * poll_seconds / max(1, answered) * 1e6, 2
                ),
                "poll_cpu_per_second": round(poll_per_second, 3),
                "poll_lag_p50_ms": _ms(_percentile(poll_lags, 0.50)),
                "poll_lag_p99_ms": _ms(_percentile(poll_lags, 0.99)),
                "poll_counts_went_down": poll.went_down,
                "stream_to_poll_cpu_ratio": round(
                    stream_per_second / max(1e-9, poll_per_second), 3
                ),
                "marginal_stream_to_poll_cpu_ratio": round(
                    stream_marginal / max(1e-9, poll_marginal), 3
                ),
                "stream_to_poll_cpu_per_delivery_ratio": round(
                    (stream_cpu / events) / max(1e-12, poll_cpu / max(1, answered)), 3
                ),
            }
        )
    return figures


# -- the run ------------------------------------------------------------------------------------


def plan_files(watchers: int, per_client: int, out: Any) -> tuple[int, int, FileLimit]:
    """The watchers per instance and per client process that the file limits allow; raises
    this process's soft limit for the instances, which inherit it."""
    server = raise_file_limit(watchers + SERVER_SPARE_FDS)
    out(server.describe("each instance"))
    if not server.enough:
        watchers = max(1, server.soft - SERVER_SPARE_FDS)
        out(f"  so the watchers per instance are LOWERED to {watchers}")
    per_client = max(1, min(per_client, server.hard - SPARE_FDS))
    return watchers, per_client, server


def _start_instances(
    tree: Path,
    workdir: Path,
    database_url: str,
    redis_url: str,
    env: dict[str, str],
    tag: str,
    instances: int,
) -> list[ManagedServer]:
    servers: list[ManagedServer] = []
    try:
        for name in "ab"[:instances]:
            server = qatysu_instance(
                name=f"{tag}-{name}",
                workdir=workdir,
                database_url=database_url,
                redis_url=redis_url,
                cpu=SERVER_CPU,
                extra_env=env,
            )
            if tree != REPO_ROOT:
                server.cwd = tree
                server.env["PYTHONPATH"] = str(tree)
            servers.append(server.start())
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def run_watchers(args: argparse.Namespace, out: Any) -> dict[str, Any]:
    watchers, per_client, server_limit = plan_files(args.watchers, args.per_client, out)
    args.watchers = watchers
    shares = [(i, n) for i in range(args.instances) for n in split(watchers, per_client)]
    secret = BENCH_SECRET_ENV["QATYSU_JWT_SECRET"]
    trees = [REPO_ROOT, *(tree.resolve() for tree in args.server_tree)]
    workdir = bench_workdir()
    database = FreshDatabase.create(postgres_admin_url(), prefix="qatysu_watchers")
    redis = PrivateRedis.start(workdir)
    pool = ClientPool(
        len(shares), cpu=CLIENT_CPU, needed_files=max(n for _, n in shares) + SPARE_FDS
    )
    runs: list[dict[str, Any]] = []
    try:
        for index, limit in enumerate(pool.limits):
            out(limit.describe(f"client process {index + 1} of {len(shares)}"))
        out(f"watchers per client process: {[n for _, n in shares]}")
        migrate(database.url, workdir)
        env = _instance_env(watchers, args.interval)
        for repetition in range(args.repeat):
            for number, tree in enumerate(trees):
                out(f"\n-- run {repetition + 1} of {args.repeat}, server tree {tree}")
                tag = f"r{repetition}t{number}"
                servers = _start_instances(
                    tree, workdir, database.url, redis.url, env, tag, args.instances
                )
                try:
                    out(
                        f"instances (pid: file limit): "
                        f"{ {s.pid: file_limit_of(s.pid) for s in servers} }"
                    )
                    figures = asyncio.run(_measure(servers, pool, shares, args, secret, out))
                finally:
                    for server in servers:
                        server.stop()
                figures["server_tree"] = str(tree)
                figures["repetition"] = repetition + 1
                runs.append(figures)
                _report_run(figures, out)
    finally:
        pool.close()
        redis.stop()
        database.drop()
    summary = summarise(runs)
    _report_summary(summary, out)
    return {
        "watchers": {
            "file_limit": {"soft": server_limit.soft, "hard": server_limit.hard},
            "client_file_limits": [limit.soft for limit in pool.limits],
            "watchers_per_client": [n for _, n in shares],
            "runs": runs,
            "summary": summary,
        }
    }


# -- the report ---------------------------------------------------------------------------------

SUMMARISED = (
    ("streams_opened", "open streams (all instances)", "10,000 per instance"),
    ("rss_per_stream_kib", "RSS per open stream, KiB", "<= 30"),
    ("stream_cpu_per_event_us", "stream: CPU per event per watcher, us", ""),
    ("stream_user_per_event_us", "  of which user, us", ""),
    ("stream_system_per_event_us", "  of which system, us", ""),
    ("stream_marginal_cpu_per_event_us", "stream: beyond signing alone, us", ""),
    ("poll_cpu_per_answer_us", "polling: CPU per answer, us", ""),
    ("stream_to_poll_cpu_per_delivery_ratio", "stream / polling CPU, per delivery", "<= 0.5"),
    ("stream_to_poll_cpu_ratio", "stream / polling CPU, whole servers a second", "<= 0.5"),
    ("marginal_stream_to_poll_cpu_ratio", "stream / polling CPU, beyond signing", "<= 0.5"),
    ("lag_p50_ms", "commit-to-event lag p50, ms", ""),
    ("lag_p99_ms", "commit-to-event lag p99, ms", "<= 2000"),
    ("stream_counts_went_down", "stream counts that went down", "0"),
    ("poll_counts_went_down", "polling counts that went down", "0"),
    ("signing_no_watchers_before_per_s", "signing, no watchers (before), /s", ""),
    ("signing_with_watchers_per_s", "signing, watchers open, /s", ""),
    ("signing_no_watchers_after_per_s", "signing, no watchers (after), /s", ""),
    ("signing_ratio", "signing with watchers / without", ">= 0.9"),
)


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per server tree and figure: every run's value, the median, the least and the most."""
    summary: dict[str, dict[str, Any]] = {}
    for run in runs:
        tree = summary.setdefault(run["server_tree"], {})
        for key, _, _ in SUMMARISED:
            value = run.get(key)
            if value is not None:
                tree.setdefault(key, {"values": []})["values"].append(value)
    for figures in summary.values():
        for entry in figures.values():
            values = entry["values"]
            median = round(statistics.median(values), 3)
            entry.update(median=median, low=min(values), high=max(values))
    return summary


def _report_run(f: dict[str, Any], out: Any) -> None:
    rows = [[label, _text(f.get(key)), target] for key, label, target in SUMMARISED]
    out("")
    out(markdown_table(["figure", "measured", "target"], rows))


def _report_summary(summary: dict[str, dict[str, Any]], out: Any) -> None:
    for tree, figures in summary.items():
        out(f"\nserver tree {tree}: median (least - most) over its runs")
        rows = []
        for key, label, target in SUMMARISED:
            entry = figures.get(key)
            if entry is None:
                continue
            values = ", ".join(str(v) for v in entry["values"])
            rows.append(
                [label, _text(entry["median"]), f"{entry['low']} - {entry['high']}", values, target]
            )
        out(markdown_table(["figure", "median", "spread", "runs", "target"], rows))


def _text(value: object) -> str:
    """A figure as measured, unrounded by the table."""
    return "-" if value is None else str(value)
