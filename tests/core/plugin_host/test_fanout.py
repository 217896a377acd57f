"""The fan-out: local delivery without Redis, one subscription per instance with it, and the
degraded state when Redis is lost."""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import TYPE_CHECKING, Any

from core.observability.metrics import Metrics
from core.plugin_host.fanout import Fanout

if TYPE_CHECKING:
    from tests.support.admission import RedisServerProcess


async def until(condition: Any) -> None:
    """Wait up to five seconds for ``condition()``."""
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not come true within 5 s")


async def test_without_redis_a_message_reaches_this_instances_listeners_only_once() -> None:
    fanout = Fanout()
    heard: list[tuple[str, dict[str, Any]]] = []
    fanout.listen(lambda topic, message: heard.append((topic, message)))
    await fanout.start()
    try:
        fanout.publish("t", {"c": 1})
    finally:
        await fanout.close()

    assert heard == [("t", {"c": 1})]
    assert not fanout.degraded


async def test_with_redis_each_instance_hears_every_instances_message_once(redis_url) -> None:
    channel = f"test-{uuid.uuid4().hex}:fanout"
    instances = [Fanout(redis_url=redis_url, channel=channel) for _ in range(2)]
    heard: list[list[dict[str, Any]]] = [[], []]
    for fanout, log in zip(instances, heard, strict=True):
        fanout.listen(lambda topic, message, log=log: log.append(message))
        await fanout.start()
    try:
        assert not any(fanout.degraded for fanout in instances)
        instances[0].publish("a", {"n": 1})
        instances[1].publish("b", {"n": 2})
        await until(lambda: all(len(log) == 2 for log in heard))
        await asyncio.sleep(0.1)
    finally:
        for fanout in instances:
            await fanout.close()

    for log in heard:
        assert sorted(m["n"] for m in log) == [1, 2]


async def test_losing_redis_degrades_and_counts_a_fallback_until_it_is_back(
    redis_server: RedisServerProcess,
) -> None:
    metrics = Metrics()
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    fanout = Fanout(redis_url=url, channel="fanout", metrics=metrics, reconnect=0.1)
    changes: list[bool] = []
    fanout.on_degraded(changes.append)
    await fanout.start()
    try:
        assert not fanout.degraded
        await redis_server.kill()
        await until(lambda: fanout.degraded)
        assert metrics.fanout_fallbacks._value.get() == 1

        await redis_server.start()
        await until(lambda: not fanout.degraded)
    finally:
        await fanout.close()

    assert changes == [False, True, False]


async def test_a_redis_that_stops_answering_without_closing_is_found_lost_by_its_pings(
    redis_server: RedisServerProcess,
) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    fanout = Fanout(redis_url=url, channel="fanout", reconnect=0.1, ping_every=0.1)
    await fanout.start()
    assert redis_server.process is not None
    try:
        assert not fanout.degraded
        await asyncio.sleep(0.5)  # idle, answering pings: still fine
        assert not fanout.degraded
        redis_server.process.send_signal(signal.SIGSTOP)
        await until(lambda: fanout.degraded)
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
        await fanout.close()


async def test_a_failed_publish_degrades_only_until_one_succeeds_and_is_then_sent_again(
    redis_url,
) -> None:
    channel = f"test-{uuid.uuid4().hex}:fanout"
    sender, other = (
        Fanout(redis_url=redis_url, channel=channel),
        Fanout(redis_url=redis_url, channel=channel),
    )
    changes: list[bool] = []
    sender.on_degraded(changes.append)
    heard: list[dict[str, Any]] = []
    other.listen(lambda topic, message: heard.append(message))
    await sender.start()
    await other.start()
    assert sender._publisher is not None
    real = sender._publisher.publish
    calls = 0

    async def times_out_once(name: str, data: bytes) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TimeoutError("Timeout reading from Redis")
        return await real(name, data)

    sender._publisher.publish = times_out_once  # type: ignore[method-assign]
    try:
        sender.publish("a", {"n": 1})
        await until(lambda: sender.degraded)
        sender.publish("b", {"n": 2})
        await until(lambda: not sender.degraded and len(heard) == 2)
    finally:
        await sender.close()
        await other.close()

    assert changes == [False, True, False]
    assert sorted(message["n"] for message in heard) == [1, 2]
    assert calls == 3
