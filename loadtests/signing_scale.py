"""``bench signing --database-url URL --instances 1,2``: durable signatures/s on shared storage.

For each instance count, that many ``qatysu serve`` processes share one database (a fresh
PostgreSQL database created on the server ``--database-url`` names and dropped afterwards, or
one SQLite file) and, on PostgreSQL, a private redis-server for the rate limits, as deployed.
Each instance gets its own wrk on its own tokens, all at once; the 201s of all of them are the
figure. A bare hello is measured first in the same run. Afterwards the run reads the count back,
shows the database's durability settings, and prints each instance's group-commit batch sizes
from ``/metrics``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.closedloop import measure_hello, signature_verdict, write_tokens
from loadtests.instances import FreshDatabase, PrivateRedis, migrate, qatysu_instance
from loadtests.report import Out, markdown_table
from loadtests.scrape import fetch
from loadtests.seeding import create_approved_petition, settled_signature_count
from loadtests.servers import BENCH_SECRET_ENV, LOAD_CPU, ManagedServer, bench_workdir
from loadtests.wrk import WrkResult, run_wrk, wrk_lua_script

DURABILITY_SETTINGS = ("synchronous_commit", "fsync", "wal_sync_method", "full_page_writes")


def scaled_topology(args: argparse.Namespace) -> str | None:
    """The preamble's description of a multi-instance or PostgreSQL signing run, else None."""
    if args.mode != "signing" or (not args.database_url and args.instances == [1]):
        return None
    storage = "PostgreSQL (fresh database) and a private Redis" if args.database_url else "SQLite"
    return (
        f"servers: {' then '.join(map(str, args.instances))} instance(s), each one process,"
        f" sharing {storage}; access log off; the government threshold raised to 10^9;"
        " pinning: instance i on core i mod nproc, every wrk on the load core (taskset)"
    )


@dataclass(frozen=True)
class BatchSizes:
    """The writer's batch-size histogram of one instance, as /metrics reports it."""

    commits: int
    writes: int
    buckets: dict[str, int]

    @property
    def mean(self) -> float:
        return self.writes / self.commits if self.commits else 0.0

    def describe(self) -> str:
        spread, previous = [], 0
        for bound, cumulative in self.buckets.items():
            if cumulative > previous:
                spread.append(f"<={bound}: {cumulative - previous}")
            previous = cumulative
        totals = f"{self.commits:,} commits, {self.writes:,} writes, mean {self.mean:.1f}"
        return f"{totals} ({'; '.join(spread)})"


def sample_value(text: str, name: str) -> float:
    """The value of the unlabelled sample ``name`` in a Prometheus text exposition, else 0."""
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def parse_batch_sizes(text: str) -> BatchSizes:
    """The ``qatysu_writer_batch_size`` histogram in a Prometheus text exposition."""
    buckets = {
        bound: int(float(count))
        for bound, count in re.findall(
            r'^qatysu_writer_batch_size_bucket\{le="([^"]+)"\} ([0-9.e+]+)$', text, re.MULTILINE
        )
    }
    return BatchSizes(
        commits=int(sample_value(text, "qatysu_writer_batch_size_count")),
        writes=int(sample_value(text, "qatysu_writer_batch_size_sum")),
        buckets=buckets,
    )


def run_concurrently(jobs: list[Callable[[], WrkResult]]) -> list[WrkResult]:
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(lambda job: job(), jobs))


def run_signing_scaled(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    workdir = bench_workdir()
    hello = measure_hello(workdir, args, out).measured
    database: FreshDatabase | None = None
    redis: PrivateRedis | None = None
    payload: dict[str, Any] = {"hello": hello.summary(), "runs": []}
    try:
        if args.database_url:
            database = FreshDatabase.create(args.database_url, prefix="qatysu_bench")
            url = database.url
            settings = {
                name: str(database.query(f"SHOW {name}")[0][0]) for name in DURABILITY_SETTINGS
            }
            out(f"database: fresh PostgreSQL database {database.name}, dropped afterwards")
            out("  " + ", ".join(f"{name} = {value}" for name, value in settings.items()))
            payload["postgresql_settings"] = settings
            redis = PrivateRedis.start(workdir)
            out(f"redis: private redis-server on {redis.url} (rate limits shared, as deployed)")
        else:
            url = f"sqlite:///{workdir / 'shared.db'}"
            out(f"database: one SQLite file shared by the instances, {url}")
        migrate(url, workdir)
        rows, first_token = [], 0
        for count in args.instances:
            row, first_token = _measure(count, url, redis, hello, workdir, first_token, args, out)
            rows.append(row)
            payload["runs"].append(row)
            if database is not None:
                ((size, stored),) = database.query(
                    "SELECT pg_total_relation_size('petition_signatures'), count(*)"
                    " FROM petition_signatures"
                )
                per_row = int(size) / max(1, int(stored))
                out(
                    f"  petition_signatures: {int(stored):,} rows, {int(size):,} bytes with"
                    f" indexes and TOAST, {per_row:,.0f} bytes per signature"
                )
                row["bytes_per_signature"] = per_row
            verdict = signature_verdict(
                row["created"], row["counted"], row["sent"], args.connections
            )
            out(f"  -> {verdict}")
    finally:
        if redis is not None:
            redis.stop()
        if database is not None:
            database.drop()
    _report(rows, hello, args, out)
    return payload


def _measure(
    count: int,
    url: str,
    redis: PrivateRedis | None,
    hello: WrkResult,
    workdir: Path,
    first_token: int,
    args: argparse.Namespace,
    out: Out,
) -> tuple[dict[str, Any], int]:
    secret = BENCH_SECRET_ENV["QATYSU_JWT_SECRET"]
    cores = os.cpu_count() or 1
    servers: list[ManagedServer] = []
    try:
        for index in range(count):
            server = qatysu_instance(
                name=f"signing-{count}x-{index + 1}",
                workdir=workdir,
                database_url=url,
                redis_url=redis.url if redis is not None else None,
                cpu=index % cores,
                admission=args.admission == "on",
            )
            servers.append(server.start())
            out(f"instance {index + 1}/{count}: {server.printable}")
        petition_id = create_approved_petition(servers[0].url, secret)
        path = f"/api/v1/petitions/{petition_id}/signatures"
        connections = max(1, args.connections // count)
        # All instances together cannot outrun hello on every core; size the tokens for that.
        per_second = hello.success_rate * min(count, cores) * 1.2 / count
        warm_jobs, jobs = [], []
        for server in servers:
            warm_count = math.ceil(per_second * args.warmup) + 100
            measured_count = math.ceil(per_second * (args.duration + 1)) + 100
            scripts = []
            for kind, amount in (("warmup", warm_count), ("measured", measured_count)):
                tokens = workdir / f"tokens-{server.port}-{kind}.txt"
                write_tokens(tokens, secret, first_token, amount)
                first_token += amount
                script = workdir / f"sign-{server.port}-{kind}.lua"
                script.write_text(wrk_lua_script(method="POST", path=path, tokens_file=tokens))
                scripts.append(script)
            if args.warmup > 0:
                warm_jobs.append(_wrk_job(server.url + path, scripts[0], connections, args.warmup))
            jobs.append(_wrk_job(server.url + path, scripts[1], connections, args.duration))
        warm = run_concurrently(warm_jobs) if warm_jobs else []
        calls_before = redis.command_calls() if redis is not None else {}
        measured = run_concurrently(jobs)
        calls_after = redis.command_calls() if redis is not None else {}
        calls = {k: v - calls_before.get(k, 0) for k, v in calls_after.items()}
        script_calls = calls.get("evalsha", 0) + calls.get("eval", 0)
        others = sum(calls.values()) - script_calls
        for result in measured:
            out(f"  {result.command}")
        created = sum(r.status_count(201) for r in (*warm, *measured))
        sent = sum(r.tokens_used for r in (*warm, *measured))
        counted = settled_signature_count(servers[0].url, petition_id)
        metrics = [fetch(server.url + "/metrics", timeout=10) for server in servers]
        batches = [parse_batch_sizes(text) for text in metrics]
        for number, sizes in enumerate(batches, 1):
            out(f"  instance {number} writer batches: {sizes.describe()}")
        requests = sum(r.requests for r in measured)
        backend_errors = sum(
            int(sample_value(text, "qatysu_ratelimit_backend_errors_total")) for text in metrics
        )
        if redis is not None and requests:
            out(
                f"  redis, measured run: {script_calls:,} rate-limit scripts (EVALSHA/EVAL),"
                f" {script_calls / requests:.2f} per request; {others:,} other commands;"
                f" {backend_errors:,} checks fell back to local limits (Redis too slow)"
            )
    finally:
        for server in servers:
            server.stop()
    row = {
        "instances": count,
        "signatures_per_s": sum(r.rate_of(201) for r in measured),
        "p50_ms": max(r.latency_ms["p50"] for r in measured),
        "p99_ms": max(r.latency_ms["p99"] for r in measured),
        "non_2xx": sum(sum(r.non_2xx.values()) for r in measured),
        "socket_errors": sum(sum(r.errors.values()) for r in measured),
        "commits": sum(b.commits for b in batches),
        "mean_batch": sum(b.writes for b in batches) / max(1, sum(b.commits for b in batches)),
        "redis_scripts": script_calls if redis is not None else None,
        "redis_other_commands": others if redis is not None else None,
        "ratelimit_backend_errors": backend_errors,
        "created": created,
        "counted": counted,
        "sent": sent,
        "wrk": [r.summary() for r in measured],
    }
    return row, first_token


def _wrk_job(url: str, script: Path, connections: int, duration: float) -> Callable[[], WrkResult]:
    return lambda: run_wrk(url, script, connections=connections, duration=duration, cpu=LOAD_CPU)


def _report(
    rows: list[dict[str, Any]], hello: WrkResult, args: argparse.Namespace, out: Out
) -> None:
    out("")
    table = [
        [
            "hello (bare aiohttp), 1 process",
            hello.success_rate,
            None,
            hello.latency_ms["p50"],
            hello.latency_ms["p99"],
            None,
            None,
        ]
    ]
    for row in rows:
        table.append(
            [
                f"sign, {row['instances']} instance(s)",
                None,
                row["signatures_per_s"],
                row["p50_ms"],
                row["p99_ms"],
                f"{row['signatures_per_s'] / hello.success_rate:.2f}"
                if hello.success_rate
                else None,
                row["mean_batch"],
            ]
        )
    out(
        markdown_table(
            [
                "run",
                "hello req/s",
                "201/s",
                "p50 ms",
                "p99 ms (worst instance)",
                "201/s ÷ hello",
                "mean batch",
            ],
            table,
        )
    )
    cores = os.cpu_count() or 1
    out("")
    out(
        f"wrk -c{args.connections} in total (split evenly, one wrk per instance, all on core"
        f" {LOAD_CPU}), {args.duration:g} s measured after {args.warmup:g} s warm-up;"
        f" instance i pinned to core i mod {cores}; the database and Redis are not pinned;"
        " 201/s counts only signatures acknowledged after their commit"
    )
    for row in rows:
        if row["non_2xx"] or row["socket_errors"]:
            out(
                f"{row['instances']} instance(s): {row['non_2xx']:,} non-2xx answers,"
                f" {row['socket_errors']:,} socket errors (see the JSON)"
            )
