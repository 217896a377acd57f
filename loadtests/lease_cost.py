"""CPU per lease top-up: one script call for a batch of buckets, by batch size.

The fast lane's leases (``core/admission/leases.py``) are topped up in batches, one script call
each. This times ``RedisRateLimiter.lease_many`` against a Redis for batches of 1 to 100 new
buckets (7 tokens each, as a ``public-read`` top-up asks) and prints this process's CPU per
top-up and the wall time per call. Its keys are deleted afterwards.

    .venv/bin/python -m loadtests.lease_cost [--redis-url redis://127.0.0.1:6379/0] [--top-ups 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import redis.asyncio as aioredis

from core.admission.gcra import Want
from core.admission.ratelimit_redis import RedisRateLimiter
from core.plugin_host.priority import RatePolicy
from loadtests.options import add_redis_url

POLICY = RatePolicy(name="public-read", rate=50.0, burst=100)
BATCHES = (1, 5, 20, 100)


async def measure(redis_url: str, top_ups: int) -> None:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"qatysu-lease-cost:{uuid.uuid4().hex}:"
    shared = RedisRateLimiter(client, key_prefix=prefix)
    try:
        await shared.lease_many([Want("warm-up", POLICY, 1)])
        for batch in BATCHES:
            calls = max(1, top_ups // batch)
            cpu, wall = time.process_time(), time.perf_counter()
            for call in range(calls):
                await shared.lease_many([Want(f"{call}-{i}", POLICY, 7) for i in range(batch)])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"batch {batch:3}: {cpu / (calls * batch) * 1e6:6.1f} µs CPU per top-up,"
                f" {wall / calls * 1e3:.2f} ms per call"
            )
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
        await client.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.lease_cost", description=__doc__)
    add_redis_url(parser, "redis://127.0.0.1:6379/0", help="the Redis to time against")
    parser.add_argument("--top-ups", type=int, default=2000, help="top-ups per batch size")
    args = parser.parse_args(argv)
    asyncio.run(measure(args.redis_url, args.top_ups))


if __name__ == "__main__":
    main()
