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
from plugins.petitions.watchers import StreamRefused

if TYPE_CHECKING:
    from core.sdk import RenderedBody

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
            retry = settings.live_retry_ms + random.randint(0, settings.live_retry_jitter_ms)
            # The watcher may leave at any write; aiohttp reports a closed transport as either.
            # Past its lifetime the stream simply ends, and the client resumes elsewhere.
            with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
                async with asyncio.timeout(settings.live_max_seconds):
                    await hub.serve(
                        topic,
                        response.write,
                        first=f"retry: {retry}\n\n".encode(),
                        last_id=last_id,
                        direct=request.transport if chunked else None,
                    )
            return response
        finally:
            hub.release(topic)
    finally:
        hub.leave(address)


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
