"""The live count stream and the map of signatures, over HTTP.

``GET /api/v1/petitions/{id}/live`` answers ``text/event-stream``: the current count and status
first, then an event per change (coalesced), region counts at a slower interval, heartbeat
comments, and a final ``closed`` event when the petition stops collecting. The route's policy
is ``streaming``: rate-limited, refused first under overload, and holding no concurrency slot
or in-flight seat while open; the stream holds no database connection either (the first
watcher of a petition reads its row once, ``plugins.petitions.watchers``). Streams are capped
per address and per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TYPE_CHECKING

import orjson
import sqlalchemy as sa
from aiohttp import HttpVersion11, web

from core.sdk import (
    CACHE,
    DATABASE,
    JURISDICTION,
    NotFound,
    Routes,
    ServiceUnavailable,
    TooManyRequests,
    cache_key,
    cached_response,
    count_refusal,
    invalid,
    lasts,
    normal,
    open_streams_in_lane,
    overloaded,
    render,
    requester_address,
    streaming,
)
from plugins.petitions import models
from plugins.petitions.lifecycle import PRIVATE, Status
from plugins.petitions.regions import region_counts, region_csv, region_document
from plugins.petitions.settings import SECTION
from plugins.petitions.state import STATE
from plugins.petitions.tables import petitions
from plugins.petitions.watchers import (
    DIRECT_WRITE_LIMIT,
    StreamRefused,
    Subscriber,
    Topic,
    chunk,
)

if TYPE_CHECKING:
    from core.sdk import RenderedBody, StreamConnection
    from plugins.petitions.settings import PetitionSettings

LIVE = streaming("petition-live", rate=1.0, burst=10)
MAP = normal("petition-map", rate=10.0, burst=20)

live_routes = Routes("/api/v1/petitions", tags=("petitions",))


def _last_event_id(request: web.Request) -> int | None:
    value = request.headers.get("Last-Event-ID")
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise invalid("Last-Event-ID", "must be the id of an event this stream sent")
    return int(value)


def _refusal(refused: StreamRefused) -> Exception:
    if refused.kind == "address":
        return TooManyRequests(
            "this address has too many open live streams; close one and try again",
            headers={"Retry-After": "5"},
        )
    return ServiceUnavailable(
        "the server is overloaded ({reason}); try again shortly",
        retry_after=5 if refused.kind == "process" else 2,
        reason=f"live-{refused.kind}",
        params={"reason": f"live-{refused.kind}"},
    )


@live_routes.get(
    "/{id}/live",
    name="petitions.live",
    summary="The signature count as it changes (server-sent events)",
    policy=LIVE,
    responses={
        200: "text/event-stream: count, regions, degraded, closed and shutdown events",
        204: "The stream was resumed after its final event: do not reconnect",
        404: "No such petition",
        422: "A Last-Event-ID this stream never sent",
        429: "Too many open streams from this address",
        503: "Overloaded, draining, or at the process's cap of open streams",
    },
)
async def live(request: web.Request) -> web.StreamResponse:
    app = request.app
    channel = app[STATE]
    hub = channel.live
    last_id = _last_event_id(request)
    address = requester_address(request)
    try:
        hub.admit(address, overloaded(app))
    except StreamRefused as refused:
        count_refusal(app, f"live_{refused.kind}")
        raise _refusal(refused) from None
    try:
        topic = await hub.topic(request.match_info["id"])
        try:
            if topic.sent_id < 0 or topic.status in PRIVATE:
                raise NotFound("no such petition")
            if topic.closed and last_id is not None and last_id >= topic.sent_id:
                return web.Response(status=204)
            if request.method == "HEAD":
                return web.Response(headers={"Content-Type": "text/event-stream"})
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-store",
                    "X-Accel-Buffering": "no",
                }
            )
            # The stream ends with its connection: no request follows it on this one.
            response.force_close()
            chunked = request.version >= HttpVersion11
            if chunked:
                response.enable_chunked_encoding()
            await response.prepare(request)
            lasts(request)
            settings = channel.settings
            # The watcher may leave at any write; aiohttp reports a closed transport as either.
            # Past its lifetime the stream simply ends, and the client resumes elsewhere.
            with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
                async with asyncio.timeout(settings.live_max_seconds):
                    await hub.serve(
                        topic,
                        response.write,
                        first=retry_hint(settings),
                        last_id=last_id,
                        direct=request.transport if chunked else None,
                    )
            return response
        finally:
            hub.release(topic)
    finally:
        hub.leave(address)


def retry_hint(settings: PetitionSettings) -> bytes:
    """The stream's first lines: how long a client waits before it reconnects, jittered so that
    the watchers of a restarted instance do not all come back at once."""
    retry = settings.live_retry_ms + random.randint(0, settings.live_retry_jitter_ms)
    return f"retry: {retry}\n\n".encode()


class LaneStreams:
    """Streams the fast lane opens (``core.http.fastlane.StreamOpener``): an anonymous request for a
    petition this instance already watches gets its head and first event from the lane, with
    no admission slot, no database read and no aiohttp request, and then a task of its own
    that serves it as ``LiveCounts.serve`` serves any stream. Anything else (a petition not
    watched here yet, a resume past the end, a refusal) takes the ordinary path."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.hub = app[STATE].live
        self.tasks: set[asyncio.Task[None]] = set()

    def ready(self, key: str) -> bool:
        topic = self.hub.topics.get(key)
        return (
            topic is not None
            and topic.loaded is not None
            and topic.loaded.done()
            and topic.sent_id >= 0
            and topic.status not in PRIVATE
            and not topic.closed
            and not self.hub.stopping
        )

    def open(
        self, key: str, last_event_id: bytes | None, address: str, connection: StreamConnection
    ) -> bytes | None:
        if not self.ready(key):
            return None
        last_id: int | None = None
        if last_event_id:
            if not last_event_id.isdigit() or len(last_event_id) > 18:
                return None  # the ordinary path answers the 422
            last_id = int(last_event_id)
        hub = self.hub
        try:
            hub.admit(address, overloaded(self.app))
        except StreamRefused:
            return None  # refused, counted and explained by the ordinary path
        topic = hub.topics[key]
        topic.watchers += 1
        subscriber = Subscriber(None, -1 if last_id is None else last_id)
        first = retry_hint(hub.settings)
        if topic.sent_id > subscriber.sent:
            first += topic.count_frame
            subscriber.sent = topic.sent_id
            hub.sent_count()
        if topic.regions_version and topic.regions_frame:
            first += topic.regions_frame
            subscriber.regions_seen = topic.regions_version
        holder: list[asyncio.Task[None]] = []

        def lost() -> None:
            # The watcher left: its task ends now, as aiohttp cancels an ordinary stream's.
            for task in holder:
                task.cancel()

        transport = connection.hand_over(lost)
        subscriber.direct = transport
        # The lane writes the head and these bytes before anything else can run.
        subscriber.ready = True
        topic.subscribers.add(subscriber)
        task = asyncio.get_running_loop().create_task(
            self._serve(topic, subscriber, transport, address), name="qatysu-live-lane"
        )
        holder.append(task)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return chunk(first)

    async def _serve(
        self, topic: Topic, subscriber: Subscriber, transport: asyncio.Transport, address: str
    ) -> None:
        hub = self.hub
        settings = hub.settings

        async def write(data: bytes) -> None:
            if transport.is_closing():
                raise ConnectionResetError("the watcher left")
            transport.write(chunk(data))
            # A reader that is behind is waited for, as aiohttp's drain would; direct writes
            # skip it meanwhile (``Subscriber.writable``).
            while transport.get_write_buffer_size() >= DIRECT_WRITE_LIMIT:
                if transport.is_closing():
                    raise ConnectionResetError("the watcher left")
                await asyncio.sleep(settings.live_interval_seconds)

        try:
            with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
                async with asyncio.timeout(settings.live_max_seconds):
                    await hub.serve_subscriber(topic, subscriber, write, b"")
        finally:
            topic.subscribers.discard(subscriber)
            hub.release(topic)
            hub.leave(address)
            if not transport.is_closing():
                transport.write(b"0\r\n\r\n")
                transport.close()

    async def close(self) -> None:
        """End what streams remain when the app stops (the drain has sent their final event)."""
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def open_from_lane(app: web.Application) -> LaneStreams | None:
    """Let the fast lane open this instance's streams where it can (``LaneStreams``); None when
    the app has no lane."""
    streams = LaneStreams(app)
    opened = open_streams_in_lane(
        app,
        b"/api/v1/petitions/",
        b"/live",
        route="/api/v1/petitions/{id}/live",
        route_name="petitions.live",
        opener=streams,
    )
    return streams if opened else None


def _map_key(petition_id: str) -> str:
    return cache_key(SECTION, f"{petition_id}/regions")


async def _region_document(request: web.Request) -> RenderedBody:
    app = request.app
    petition_id = request.match_info["id"]
    settings = app[STATE].settings

    async def load() -> RenderedBody:
        async with app[DATABASE].read() as conn:
            row = (
                await conn.execute(
                    sa.select(petitions.c.status).where(petitions.c.id == petition_id)
                )
            ).first()
            if row is None or Status(row.status) in PRIVATE:
                return render(None)
            counts = await region_counts(conn, petition_id)
        return render(
            region_document(petition_id, counts, settings.region_minimum, app[JURISDICTION]),
            meta=True,
        )

    rendered = await app[CACHE].get(_map_key(petition_id), load)
    if rendered.meta is None:
        raise NotFound("no such petition")
    return rendered


@live_routes.get(
    "/{id}/regions",
    name="petitions.regions",
    summary="Signatures by region; regions under the minimum are merged into other",
    policy=MAP,
    responses={200: models.RegionCounts, 304: "Not modified", 404: "No such petition"},
)
async def regions(request: web.Request) -> web.Response:
    rendered = await _region_document(request)
    return cached_response(
        request,
        rendered,
        max_age=request.app[STATE].settings.cache_max_age,
        cache_key=_map_key(request.match_info["id"]),
    )


@live_routes.get(
    "/{id}/regions.csv",
    name="petitions.regions_csv",
    summary="Signatures by region as CSV, with the same minimum",
    policy=MAP,
    responses={200: "text/csv: region, names, signatures; other last", 404: "No such petition"},
)
async def regions_as_csv(request: web.Request) -> web.Response:
    rendered = await _region_document(request)
    petition_id = request.match_info["id"]
    return web.Response(
        body=region_csv(orjson.loads(rendered.body)),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="petition-{petition_id}-regions.csv"',
            "Cache-Control": "public, max-age=60",
        },
    )
