"""Live signature counts for the watchers of each petition, in this instance.

Every committed change to a petition's count or status is published once on the app's fan-out
(``core.plugin_host.fanout``); every instance receives it and, when it has watchers of that
petition, renders one event, written as is to the socket of every watcher that is caught up (no task
wakes for it). Anything else wakes a watcher's task, which writes what is newer than what it
last wrote and waits again; events are never queued. A slow watcher therefore skips counts
instead of piling them up, and a burst of signatures costs one event per interval, not one per
signature.

Each petition watched here is a ``Topic``: its last state, the event bytes rendered once for
all its watchers, and the wake-up they wait on. Counts are coalesced to at most one event per
``live_interval_seconds``; the closing status goes out at once. An event's ``id`` is
``event_id(count, status)``: counts never go down and statuses only move forward, so ids grow,
and a state whose id is not above the last one sent is dropped. That is also what makes the
stream resume exactly with ``Last-Event-ID``.

One background task per instance (``LiveCounts.run``) beats the heartbeats, reads the region
counts of watched petitions at the slower interval, and, while the fan-out is degraded (Redis
lost), reads the watched counts every interval instead.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from core.sdk import DATABASE, FANOUT, JURISDICTION, METRICS, CappedCounts, committed_at, stop
from plugins.petitions.lifecycle import PRIVATE, SIGNABLE, Status
from plugins.petitions.regions import region_counts, region_document
from plugins.petitions.tables import petitions

if TYPE_CHECKING:
    from aiohttp import web

    from plugins.petitions.settings import PetitionSettings

log = logging.getLogger(__name__)

TOPIC_PREFIX = "petitions:"
# Statuses in the order a petition moves through them, as the low bits of an event id.
_RANK = {
    Status.RESTRICTED: 0,
    Status.PUBLIC: 1,
    Status.AWAITING_RESPONSE: 2,
    Status.ANSWERED: 3,
    Status.EXPIRED: 3,
}
HEARTBEAT = b": heartbeat\n\n"


def event_id(count: int, status: Status) -> int:
    """The id of the event for this state: greater for a later state of the same petition."""
    return count * 4 + _RANK.get(status, 0)


def is_closed(status: Status) -> bool:
    """Whether the petition no longer collects signatures: its stream ends."""
    return status not in SIGNABLE


def frame(event: str, data: dict[str, Any], *, ident: int | None = None) -> bytes:
    """One server-sent event, its data on one line."""
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {event}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


class Topic:
    """One petition's watchers in this instance, and what they are to be sent."""

    __slots__ = (
        "count",
        "count_frame",
        "last_flush",
        "loaded",
        "notice_frame",
        "notice_version",
        "pending",
        "petition_id",
        "regions_count",
        "regions_frame",
        "regions_version",
        "sent_id",
        "status",
        "subscribers",
        "timer",
        "watchers",
    )

    def __init__(self, petition_id: str) -> None:
        self.petition_id = petition_id
        self.watchers = 0
        self.sent_id = -1
        self.count = 0
        self.status = Status.RESTRICTED
        self.count_frame = b""
        self.pending: tuple[int, Status, float | None] | None = None
        self.last_flush = -math.inf
        self.timer: asyncio.TimerHandle | None = None
        self.regions_frame = b""
        self.regions_version = 0
        self.regions_count = -1
        self.notice_frame = b""
        self.notice_version = 0
        self.subscribers: set[Subscriber] = set()
        self.loaded: asyncio.Future[None] | None = None

    @property
    def closed(self) -> bool:
        return self.sent_id >= 0 and is_closed(self.status)

    def wake(self) -> None:
        for subscriber in self.subscribers:
            subscriber.wakeup.set()

    def pending_id(self) -> int:
        return -1 if self.pending is None else event_id(self.pending[0], self.pending[1])


# A watcher whose socket holds more unsent bytes than this is served by its own task, which
# waits for the client to read (a slow reader skips counts; it never piles them up).
DIRECT_WRITE_LIMIT = 16 * 1024


class Subscriber:
    """One open stream of a topic: what it was last sent, and how to reach it.

    ``direct`` is the stream's transport when its body is chunked: whatever goes to every
    watcher of the topic (a new count, new region counts, a heartbeat) is then written to it
    once rendered for all, from the code that rendered it, without waking the stream's task.
    The task is woken (``wakeup``) only for what is not the same for all (the first event, a
    socket that is behind, the final events) and for the rare notices.
    """

    __slots__ = (
        "direct",
        "heartbeat_seen",
        "notice_seen",
        "ready",
        "regions_seen",
        "sent",
        "wakeup",
    )

    def __init__(self, direct: asyncio.Transport | None, sent: int) -> None:
        self.direct = direct
        self.sent = sent
        self.regions_seen = 0
        self.notice_seen = 0
        self.heartbeat_seen = 0
        # False until the task has written the stream's first bytes: nothing may precede them.
        self.ready = False
        self.wakeup = asyncio.Event()

    def writable(self) -> asyncio.Transport | None:
        """The transport, when a write to it now goes out at once and after all the task's."""
        transport = self.direct
        if (
            self.ready
            and transport is not None
            and not transport.is_closing()
            and transport.get_write_buffer_size() < DIRECT_WRITE_LIMIT
        ):
            return transport
        return None


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked HTTP/1.1 body."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


class StreamRefused(Exception):
    """A new stream over a cap, or refused under overload; ``kind`` says which."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class LiveCounts:
    """This instance's watchers, by petition; see the module docstring."""

    def __init__(self, settings: PetitionSettings, app: web.Application) -> None:
        self.settings = settings
        self.app = app
        self.topics: dict[str, Topic] = {}
        self.open = 0
        self.per_address = CappedCounts(settings.live_max_streams_per_address)
        self.stopping = False
        self.heartbeat_version = 0
        self._to_publish: dict[str, tuple[int, Status, float]] = {}
        self._publish_scheduled = False
        metrics = app[METRICS]
        self._gauge = metrics.live_streams
        self._lag = metrics.live_lag
        self._sent = {
            name: metrics.live_events.labels(name)
            for name in ("count", "closed", "regions", "degraded", "heartbeat", "shutdown")
        }
        fanout = app[FANOUT]
        fanout.listen(self._on_message)
        fanout.on_degraded(self._on_degraded)

    # -- admission of new streams -------------------------------------------------------------

    def admit(self, address: str | None, overloaded: bool) -> None:
        """Count a new stream from ``address``, or refuse it (``StreamRefused``)."""
        if self.stopping:
            raise StreamRefused("draining")
        if overloaded:
            raise StreamRefused("overload")
        if self.open >= self.settings.live_max_streams:
            raise StreamRefused("process")
        if address is not None:
            if self.per_address.full(address):
                raise StreamRefused("address")
            self.per_address.add(address)
        self.open += 1
        self._gauge.inc()

    def leave(self, address: str | None) -> None:
        self.open -= 1
        self._gauge.dec()
        if address is not None:
            self.per_address.remove(address)

    # -- changes in: this instance's commits, and every instance's through the fan-out ---------

    def changed(self, petition_id: str, count: int, status: Status) -> None:
        """A committed change; published once per petition per loop turn, whatever the number of
        signatures of the batch that committed it."""
        at = committed_at()
        previous = self._to_publish.get(petition_id)
        if previous is None or event_id(count, status) > event_id(previous[0], previous[1]):
            self._to_publish[petition_id] = (count, status, at)
        if not self._publish_scheduled:
            self._publish_scheduled = True
            asyncio.get_running_loop().call_soon(self._publish)

    def _publish(self) -> None:
        self._publish_scheduled = False
        batch, self._to_publish = self._to_publish, {}
        fanout = self.app[FANOUT]
        for petition_id, (count, status, at) in batch.items():
            fanout.publish(TOPIC_PREFIX + petition_id, {"c": count, "s": status.value, "at": at})

    def _on_message(self, topic_name: str, message: dict[str, Any]) -> None:
        if not topic_name.startswith(TOPIC_PREFIX):
            return
        topic = self.topics.get(topic_name[len(TOPIC_PREFIX) :])
        if topic is None:
            return
        try:
            count, status = int(message["c"]), Status(message["s"])
        except (KeyError, TypeError, ValueError):
            log.warning("live counts: ignoring a malformed message on %s", topic_name)
            return
        at = message.get("at")
        self.offer(topic, count, status, at if isinstance(at, float) else None)

    def offer(self, topic: Topic, count: int, status: Status, at: float | None) -> None:
        """A state of the petition; sent at once or at the end of the interval, unless older."""
        if status in PRIVATE:
            return
        ident = event_id(count, status)
        if ident <= max(topic.sent_id, topic.pending_id()):
            return
        topic.pending = (count, status, at)
        now = time.monotonic()
        due = topic.last_flush + self.settings.live_interval_seconds
        if is_closed(status) or now >= due:
            self._flush(topic)
        elif topic.timer is None:
            topic.timer = asyncio.get_running_loop().call_later(due - now, self._flush, topic)

    def _flush(self, topic: Topic) -> None:
        if topic.timer is not None:
            topic.timer.cancel()
            topic.timer = None
        if topic.pending is None:
            return
        count, status, at = topic.pending
        topic.pending = None
        topic.count, topic.status = count, status
        topic.sent_id = event_id(count, status)
        topic.last_flush = time.monotonic()
        topic.count_frame = frame(
            "closed" if is_closed(status) else "count",
            {"petition_id": topic.petition_id, "signature_count": count, "status": status.value},
            ident=topic.sent_id,
        )
        if at is not None:
            self._lag.observe(max(0.0, time.time() - at))
        if is_closed(status):
            topic.wake()
            return
        framed = chunk(topic.count_frame)
        sent_id = topic.sent_id
        written = 0
        # The hot loop of a busy petition: one write of the same bytes per caught-up watcher.
        for subscriber in topic.subscribers:
            transport = subscriber.direct
            if (
                subscriber.ready
                and transport is not None
                and not transport.is_closing()
                and transport.get_write_buffer_size() < DIRECT_WRITE_LIMIT
            ):
                transport.write(framed)
                subscriber.sent = sent_id
                written += 1
            else:
                subscriber.wakeup.set()
        if written:
            self._sent["count"].inc(written)

    def sent_count(self) -> None:
        """Count a count event written outside this module (the fast lane's first event)."""
        self._sent["count"].inc()

    def _send_regions(self, topic: Topic) -> None:
        """New region counts to every watcher of ``topic``: written to the caught-up ones."""
        framed = chunk(topic.regions_frame)
        version = topic.regions_version
        written = 0
        for subscriber in topic.subscribers:
            transport = subscriber.writable()
            if transport is not None and subscriber.sent >= topic.sent_id:
                transport.write(framed)
                subscriber.regions_seen = version
                written += 1
            else:
                subscriber.wakeup.set()
        if written:
            self._sent["regions"].inc(written)

    def _beat(self, now: float) -> None:
        """A heartbeat to every stream; none to a caught-up one that was written to within the
        heartbeat interval (a count or regions keep it alive as well)."""
        self.heartbeat_version += 1
        version = self.heartbeat_version
        framed = chunk(HEARTBEAT)
        recent = now - self.settings.live_heartbeat_seconds
        written = 0
        for topic in list(self.topics.values()):
            busy = topic.last_flush > recent
            for subscriber in topic.subscribers:
                transport = subscriber.writable()
                if transport is None or subscriber.sent < topic.sent_id:
                    subscriber.wakeup.set()
                    continue
                if not busy:
                    transport.write(framed)
                    written += 1
                subscriber.heartbeat_seen = version
        if written:
            self._sent["heartbeat"].inc(written)

    def _on_degraded(self, degraded: bool) -> None:
        notice = frame(
            "degraded",
            {
                "degraded": degraded,
                "polling_interval": self.settings.live_interval_seconds if degraded else None,
            },
        )
        for topic in self.topics.values():
            topic.notice_frame = notice
            topic.notice_version += 1
            topic.wake()

    # -- one stream --------------------------------------------------------------------------

    async def topic(self, petition_id: str) -> Topic:
        """The petition's topic with its current state loaded; NotFound-worthy when the state
        says private (the caller checks ``status``). The first watcher reads the row once."""
        topic = self.topics.get(petition_id)
        if topic is None:
            topic = self.topics[petition_id] = Topic(petition_id)
        topic.watchers += 1
        try:
            if topic.loaded is None:
                topic.loaded = asyncio.get_running_loop().create_future()
                try:
                    await self._load(topic)
                except BaseException as exc:
                    loaded, topic.loaded = topic.loaded, None
                    loaded.set_exception(exc)
                    # Retrieved here, so that no waiter-less future logs it.
                    loaded.exception()
                    raise
                topic.loaded.set_result(None)
            else:
                await asyncio.shield(topic.loaded)
        except BaseException:
            self.release(topic)
            raise
        return topic

    async def _load(self, topic: Topic) -> None:
        async with self.app[DATABASE].read() as conn:
            row = (
                await conn.execute(
                    sa.select(petitions.c.signature_count, petitions.c.status).where(
                        petitions.c.id == topic.petition_id
                    )
                )
            ).first()
        if row is None or Status(row.status) in PRIVATE:
            topic.status = Status.MODERATION
            return
        # A message that arrived meanwhile may be newer: ``offer`` keeps the later state.
        self.offer(topic, row.signature_count, Status(row.status), None)
        self._flush(topic)

    def release(self, topic: Topic) -> None:
        topic.watchers -= 1
        if topic.watchers <= 0 and self.topics.get(topic.petition_id) is topic:
            if topic.timer is not None:
                topic.timer.cancel()
            del self.topics[topic.petition_id]

    async def serve(
        self,
        topic: Topic,
        write: Callable[[bytes], Any],
        *,
        first: bytes,
        last_id: int | None,
        direct: asyncio.Transport | None = None,
    ) -> None:
        """Write ``first`` and the events of ``topic`` newer than ``last_id`` until the petition
        closes, the server stops, or the watcher leaves (``write`` raises). ``direct``: the
        stream's transport, when its body is chunked (``Subscriber``)."""
        subscriber = Subscriber(direct, -1 if last_id is None else last_id)
        await self.serve_subscriber(topic, subscriber, write, first)

    async def serve_subscriber(
        self, topic: Topic, subscriber: Subscriber, write: Callable[[bytes], Any], first: bytes
    ) -> None:
        """``serve`` for a subscriber made by the caller (already ready when its first bytes
        went out before, as when the fast lane opened the stream)."""
        topic.subscribers.add(subscriber)
        try:
            await self._serve(topic, subscriber, write, first)
        finally:
            topic.subscribers.discard(subscriber)

    async def _serve(
        self, topic: Topic, subscriber: Subscriber, write: Callable[[bytes], Any], first: bytes
    ) -> None:
        subscriber.notice_seen = topic.notice_version
        subscriber.heartbeat_seen = self.heartbeat_version
        out = first
        if self.app[FANOUT].degraded:
            out += self._degraded_now()
            self._sent["degraded"].inc()
        while True:
            subscriber.wakeup.clear()
            if topic.sent_id > subscriber.sent:
                out += topic.count_frame
                subscriber.sent = topic.sent_id
                self._sent["closed" if topic.closed else "count"].inc()
            if topic.regions_version > subscriber.regions_seen and topic.regions_frame:
                out += topic.regions_frame
                subscriber.regions_seen = topic.regions_version
                self._sent["regions"].inc()
            if topic.notice_version > subscriber.notice_seen:
                out += topic.notice_frame
                subscriber.notice_seen = topic.notice_version
                self._sent["degraded"].inc()
            if self.heartbeat_version > subscriber.heartbeat_seen:
                subscriber.heartbeat_seen = self.heartbeat_version
                if not out:
                    out = HEARTBEAT
                    self._sent["heartbeat"].inc()
            if self.stopping and not topic.closed:
                out += frame("shutdown", {"reason": "the server is restarting; reconnect"})
                self._sent["shutdown"].inc()
                await write(out)
                return
            if out:
                # aiohttp hands the bytes to the transport before it waits for a slow reader, so
                # a direct write that follows cannot overtake them.
                await write(out)
                out = b""
            subscriber.ready = True
            if topic.closed and subscriber.sent >= topic.sent_id:
                return
            await subscriber.wakeup.wait()

    def _degraded_now(self) -> bytes:
        return frame(
            "degraded",
            {"degraded": True, "polling_interval": self.settings.live_interval_seconds},
        )

    # -- background: heartbeats, region counts, polling while degraded, the drain ---------------

    async def on_shutdown(self, app: web.Application) -> None:
        """Drain: every open stream gets a final event and ends."""
        self.stopping = True
        for topic in list(self.topics.values()):
            topic.wake()

    async def run(self) -> None:
        settings = self.settings
        tick = min(settings.live_interval_seconds, settings.live_heartbeat_seconds)
        next_heartbeat = time.monotonic() + settings.live_heartbeat_seconds
        next_regions = time.monotonic() + settings.live_regions_interval_seconds
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            try:
                if self.app[FANOUT].degraded and self.topics:
                    await self._poll()
                if now >= next_regions:
                    next_regions = now + settings.live_regions_interval_seconds
                    await self._read_regions()
            except Exception:
                log.exception("live counts: a background read failed; it runs again next tick")
            if now >= next_heartbeat:
                next_heartbeat = now + settings.live_heartbeat_seconds
                self._beat(now)

    async def _poll(self) -> None:
        """Read every watched petition's count at once: the fall-back while Redis is lost."""
        ids = list(self.topics)
        async with self.app[DATABASE].read() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        petitions.c.id, petitions.c.signature_count, petitions.c.status
                    ).where(petitions.c.id.in_(ids))
                )
            ).all()
        for row in rows:
            topic = self.topics.get(row.id)
            if topic is not None:
                self.offer(topic, row.signature_count, Status(row.status), None)

    async def _read_regions(self) -> None:
        register = self.app[JURISDICTION]
        for topic in list(self.topics.values()):
            if topic.sent_id < 0 or topic.count == topic.regions_count:
                continue
            async with self.app[DATABASE].read() as conn:
                counts = await region_counts(conn, topic.petition_id)
            topic.regions_count = topic.count
            topic.regions_frame = frame(
                "regions",
                region_document(topic.petition_id, counts, self.settings.region_minimum, register),
            )
            topic.regions_version += 1
            self._send_regions(topic)


async def live_counts_ctx(app: web.Application) -> AsyncIterator[None]:
    """The instance's background task for live counts, for the app's lifetime."""
    from plugins.petitions.live import open_from_lane
    from plugins.petitions.state import STATE

    live = app[STATE].live
    streams = open_from_lane(app)
    task = asyncio.create_task(live.run(), name="qatysu-live-counts")
    yield
    await stop(task)
    if streams is not None:
        await streams.close()
