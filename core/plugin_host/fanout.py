"""Fan-out of committed changes to every instance, for plugins that push them to watchers.

A plugin publishes a small JSON message on a *topic* (its own name for what changed, such as a
petition's id) once the change has committed; every listener of every instance receives it.
The facility knows no channel and no topic: it moves messages.

* Without Redis, messages go straight to this instance's listeners.
* With Redis, each instance holds one subscription to one pub/sub channel
  (``<key_prefix>fanout``) and hands what arrives to its listeners; its own messages come back
  through Redis like the others'. Redis thus carries one message per change per instance,
  whatever the number of watchers or topics. One channel rather than one per topic: an instance
  would otherwise subscribe and unsubscribe as watchers come and go, and a change to a topic
  that has no watcher here costs one small dispatch.
* With Redis lost (the subscription fails, or a publish does), the fan-out is *degraded*:
  listeners are told (``on_degraded``), so they can read what they watch every interval
  instead, and the subscription is retried every ``reconnect`` seconds until it is back. A
  failed publish alone (a timeout while the loop was busy, say) degrades only until a publish
  succeeds again on a live subscription; the failed messages, the last of each topic, are then
  published again, so that other instances hear of what they missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import orjson

from core.background import stop
from core.plugin_host import keys as plugin_host_keys

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from aiohttp import web

    from core.observability.metrics import Metrics
    from core.settings import Settings

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]
DegradedListener = Callable[[bool], None]
RECONNECT_SECONDS = 1.0
# An idle subscription is pinged this often; one silent for three pings is lost (a Redis that
# stopped answering without closing the connection, as behind a partition).
PING_SECONDS = 5.0
# Topics whose last failed message is kept to be published again (one per petition, say).
MAX_UNSENT = 10_000


class Fanout:
    """Publish to every instance's listeners; see the module docstring."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        channel: str = "qatysu:fanout",
        metrics: Metrics | None = None,
        reconnect: float = RECONNECT_SECONDS,
        ping_every: float = PING_SECONDS,
    ) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self.reconnect = reconnect
        self.ping_every = ping_every
        self._metrics = metrics
        self._listeners: list[Listener] = []
        self._degraded_listeners: list[DegradedListener] = []
        self._publisher: aioredis.Redis | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        # Until the first subscription answers, messages could be lost: count that as degraded.
        self.degraded = redis_url is not None
        self._subscribed = False
        # The last message of each topic whose publish failed, sent again once one succeeds.
        self._unsent: dict[str, tuple[bytes, dict[str, Any]]] = {}
        self.published = 0
        self.received = 0

    @property
    def shared(self) -> bool:
        """Whether messages cross instances (through Redis)."""
        return self.redis_url is not None

    def listen(self, listener: Listener) -> None:
        """Call ``listener(topic, message)`` for every message, from any instance."""
        self._listeners.append(listener)

    def on_degraded(self, listener: DegradedListener) -> None:
        """Call ``listener(degraded)`` whenever messages stop or start crossing instances."""
        self._degraded_listeners.append(listener)

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Send ``message`` on ``topic`` to every instance; call once the change has committed."""
        self.published += 1
        if self._publisher is None:
            self._deliver(topic, message)
            return
        data = orjson.dumps({"t": topic, "m": message})
        task = asyncio.get_running_loop().create_task(self._publish(data, topic, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, data: bytes, topic: str, message: dict[str, Any]) -> None:
        assert self._publisher is not None
        try:
            await self._publisher.publish(self.channel, data)
        except Exception as exc:
            log.warning("fan-out publish failed (%s); falling back to polling", exc)
            self._set_degraded(True)
            if len(self._unsent) < MAX_UNSENT or topic in self._unsent:
                self._unsent[topic] = (data, message)
            # This instance's own watchers still hear of its own commits.
            self._deliver(topic, message)
            return
        if self.degraded and self._subscribed:
            self._set_degraded(False)
        if self._unsent:
            unsent, self._unsent = self._unsent, {}
            for again_topic, (again, again_message) in unsent.items():
                task = asyncio.get_running_loop().create_task(
                    self._publish(again, again_topic, again_message)
                )
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    def _deliver(self, topic: str, message: dict[str, Any]) -> None:
        self.received += 1
        for listener in self._listeners:
            try:
                listener(topic, message)
            except Exception:
                log.exception("fan-out listener failed on topic %s", topic)

    def _set_degraded(self, degraded: bool) -> None:
        if degraded == self.degraded:
            return
        self.degraded = degraded
        if degraded and self._metrics is not None:
            self._metrics.fanout_fallbacks.inc()
        for listener in self._degraded_listeners:
            try:
                listener(degraded)
            except Exception:
                log.exception("fan-out degraded listener failed")

    async def start(self) -> None:
        if self.redis_url is None:
            return
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._publisher = aioredis.Redis.from_url(
            self.redis_url,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        ready = asyncio.get_running_loop().create_future()
        self._subscriber = asyncio.create_task(self._subscribe(ready), name="qatysu-fanout")
        # Start-up waits briefly for the first subscription, so no early change is missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(ready), timeout=1.0)

    async def close(self) -> None:
        if self._subscriber is not None:
            await stop(self._subscriber)
        for task in list(self._pending):
            with contextlib.suppress(Exception):
                await task
        if self._publisher is not None:
            await self._publisher.aclose()

    async def _subscribe(self, ready: asyncio.Future[None]) -> None:
        import redis.asyncio as aioredis

        assert self.redis_url is not None
        while True:
            client = aioredis.Redis.from_url(
                self.redis_url, socket_connect_timeout=0.5, health_check_interval=0
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed = True
                self._set_degraded(False)
                if not ready.done():
                    ready.set_result(None)
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fan-out subscription lost (%s); polling until it is back", exc)
                self._subscribed = False
                self._set_degraded(True)
                if not ready.done():
                    ready.set_result(None)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(self.reconnect)

    async def _listen(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=self.ping_every)
            now = loop.time()
            if message is not None:
                heard = now
                if message["type"] == "message":
                    self._receive(message["data"])
                continue
            if now - heard > 3 * self.ping_every:
                raise ConnectionError(f"Redis silent for {now - heard:.1f} s")
            await pubsub.ping()

    def _receive(self, data: bytes) -> None:
        try:
            envelope = orjson.loads(data)
            topic, message = envelope["t"], envelope["m"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("fan-out: ignoring a malformed message")
            return
        if isinstance(topic, str) and isinstance(message, dict):
            self._deliver(topic, message)


def committed_at() -> float:
    """The wall-clock time a change committed, as messages carry it to measure fan-out lag."""
    return time.time()


def build_fanout(settings: Settings, metrics: Metrics) -> Fanout:
    """The app's fan-out, shared through Redis when one is configured; no I/O until started."""
    return Fanout(
        redis_url=settings.redis.url,
        channel=f"{settings.redis.key_prefix}fanout",
        metrics=metrics,
    )


async def fanout_ctx(app: web.Application) -> AsyncIterator[None]:
    """Subscribe for the app's lifetime (after ``redis_ctx``, beside the rate limiter)."""
    fanout = app[plugin_host_keys.FANOUT]
    await fanout.start()
    yield
    await fanout.close()
