"""The lease-cost benchmark times every batch size against a real Redis and leaves no key."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from loadtests.lease_cost import BATCHES, main


async def test_each_batch_size_is_timed_and_no_key_is_left(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # main runs a loop of its own, so it runs in a thread beside the test's.
    await asyncio.to_thread(main, ["--redis-url", redis_url, "--top-ups", "10"])
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split(":")[0].split()[1]) for line in lines] == list(BATCHES)
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert [key async for key in client.scan_iter(match="qatysu-lease-cost:*")] == []
    finally:
        await client.aclose()
