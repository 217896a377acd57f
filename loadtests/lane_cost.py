"""Per-request CPU cost of the fast lane's answer, from the request head to the response bytes.

``FastLane.answer`` runs once per hot read the lane serves, in ``data_received``: reading the
head, checking the client's budget, and joining the response. This times it alone (no socket),
for two heads: the benchmark's (``Host`` and ``X-Forwarded-For``, as wrk sends them) and a
browser's (nine headers). The budget is checked either by the local GCRA limiter (no Redis) or
by the leased budget (with Redis; a lease is held, so no round trip is timed). ``--against``
times another ``fastlane.py`` (for example main's, from a second worktree) in the same
interleaved rounds, so that a noisy neighbour slows both alike. Figures are the median and the
spread over the rounds, in microseconds per answer.

    .venv/bin/python -m loadtests.lane_cost [--rounds 15] [--number 20000] [--against PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import ipaddress
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from core.admission.clients import ClientAddressing
from core.admission.gcra import Grant, LocalRateLimiter, RateDecision, Want
from core.admission.leases import LeasedBudget
from core.http.cache import MicroCache, render
from core.observability.metrics import Metrics
from core.plugin_host.priority import RatePolicy
from loadtests.options import add_number, add_rounds

TARGET = "/api/v1/petitions/YComBcrzdkBW29Rw"
# Never exhausted while timing: every answer pays for a full, allowed check.
POLICY = RatePolicy(name="public-read", rate=1e9, burst=10**9)
HEADS = {
    "wrk": f"GET {TARGET} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Forwarded-For: 10.0.12.34",
    "browser": (
        f"GET {TARGET} HTTP/1.1\r\nHost: qatysu.example.kz\r\nUser-Agent: Mozilla/5.0 (X11;"
        " Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: application/json"
        "\r\nAccept-Language: kk-KZ,kk;q=0.9,ru;q=0.8\r\nAccept-Encoding: gzip, deflate, br"
        '\r\nIf-None-Match: "0123456789abcdef01234567"\r\nConnection: keep-alive'
        "\r\nSec-Fetch-Mode: cors\r\nX-Forwarded-For: 10.0.12.34"
    ),
}
PEER = ipaddress.ip_address("127.0.0.1")


class _AlwaysGrants:
    async def lease_many(self, wants: Sequence[Want]) -> list[Grant]:
        allowed = RateDecision(
            allowed=True, limit=POLICY.burst, remaining=0, reset_after=0.0, retry_after=0.0
        )
        return [Grant(tokens=want.tokens, decision=allowed) for want in wants]


class _Healthy:
    fail_open = True
    timeout = 1.0

    def primary_available(self) -> bool:
        return True

    def primary_failed(self) -> None:
        raise AssertionError("the timed source never fails")


def leased_budget() -> LeasedBudget:
    budget = LeasedBudget(source=_AlwaysGrants(), gate=_Healthy(), fallback=LocalRateLimiter())

    async def fill() -> None:
        task = asyncio.create_task(budget.run_top_ups())
        await asyncio.sleep(0.1)
        task.cancel()

    budget.check_now(f"{POLICY.name}:addr:10.0.12.34", POLICY)  # asks for the lease
    asyncio.run(fill())
    return budget


def load_fastlane(path: Path | None) -> ModuleType:
    if path is None:  # this tree's lane, imported only when no other is named
        import core.http.fastlane

        return core.http.fastlane
    spec = importlib.util.spec_from_file_location(f"fastlane_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def published_lane(
    module: ModuleType,
    targets: Sequence[str],
    *,
    limiter: Any,
    rate: RatePolicy | None,
    trusted: ClientAddressing,
) -> Any:
    """A ``module.FastLane`` answering each of ``targets`` with one cached petition."""
    cache = MicroCache(ttl=10**9, max_entries=len(targets))
    rendered = render({"id": TARGET.rsplit("/", 1)[1], "title": "x" * 400}, meta=True)

    async def fill() -> None:
        async def load() -> Any:
            return rendered

        for target in targets:
            await cache.get(target, load)

    asyncio.run(fill())
    lane = module.FastLane(cache=cache, metrics=Metrics(), limiter=limiter, trusted=trusted)
    for target in targets:
        lane.publish(
            target.encode(),
            cache_key=target,
            rendered=rendered,
            route="/api/v1/petitions/{id}",
            rate=rate,
            cache_control="public, max-age=1, stale-while-revalidate=5",
        )
    return lane


def lane_answering(module: ModuleType, limiter: Any) -> Callable[[bytes], bytes]:
    lane = published_lane(
        module,
        [TARGET],
        limiter=limiter,
        rate=POLICY,
        trusted=ClientAddressing(trusted=(ipaddress.ip_network("127.0.0.1/32"),)),
    )

    def answer(head: bytes) -> bytes:
        response: bytes = lane.answer(head, PEER, 0.0)[0]
        return response

    return answer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.lane_cost", description=__doc__)
    add_rounds(parser)
    add_number(parser, help="answers per round")
    parser.add_argument("--against", type=Path, help="another fastlane.py to time alongside")
    args = parser.parse_args(argv)

    this, other = load_fastlane(None), load_fastlane(args.against) if args.against else None
    variants: dict[str, Callable[[bytes], bytes]] = {
        "this tree, local budget": lane_answering(this, LocalRateLimiter()),
        "this tree, leased budget": lane_answering(this, leased_budget()),
    }
    if other is not None:
        variants[f"{args.against}, local budget"] = lane_answering(other, LocalRateLimiter())
    for head_name, text in HEADS.items():
        head = text.encode()
        for name, answer in variants.items():
            if not answer(head):
                raise SystemExit(f"{name} does not answer the {head_name} head")
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, answer in variants.items():
                started = time.perf_counter()
                for _ in range(args.number):
                    answer(head)
                samples[name].append((time.perf_counter() - started) / args.number * 1e6)
        print(f"{head_name} head ({len(head)} bytes), µs per answer, median (min-max):")
        for name, values in samples.items():
            print(
                f"  {name}: {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
            )


if __name__ == "__main__":
    main()
