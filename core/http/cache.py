"""A micro-cache with single-flight for hot reads, and HTTP validators for proxies.

When a petition goes viral, thousands of citizens read the same petition in the same second.
The micro-cache keeps each rendered answer for about a second, and single-flight makes all the
requests that miss at the same instant share one database read. ``ETag``/``If-None-Match`` and
``Cache-Control: stale-while-revalidate`` let a proxy or CDN in front absorb the flood too.

Cached answers may be a second old; nothing that decides correctness (whether a signature is
accepted, a deadline passed) is ever read from here. So the cache stays in each process even
when Redis is configured.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from core import keys
from core.admission import keys as admission_keys
from core.http import keys as http_keys
from core.storage import keys as storage_keys
from core.wire.errors import NotFound

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


def cache_key(kind: str, resource_id: str) -> str:
    """The one way to name a cached resource: a channel invalidates by the key it read with."""
    return f"{kind}:{resource_id}"


@dataclass(frozen=True, slots=True)
class RenderedBody:
    """A JSON body serialised once, its ETag, and what the handler needs to decide who sees it."""

    body: bytes
    etag: str
    meta: Any = None


def render(data: Any, *, meta: Any = None) -> RenderedBody:
    body = orjson.dumps(data)
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return RenderedBody(body=body, etag=etag, meta=meta)


class MicroCache:
    """Rendered answers kept ``ttl`` seconds; concurrent misses of one key share one load."""

    def __init__(
        self, *, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, RenderedBody]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[RenderedBody]] = {}
        self.loads = 0
        self.hits = 0

    async def get(self, key: str, load: Callable[[], Awaitable[RenderedBody]]) -> RenderedBody:
        """The rendered answer for ``key``, loading it at most once per TTL across callers."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            self.hits += 1
            return entry[1]
        flight = self._inflight.get(key)
        if flight is not None:
            return await asyncio.shield(flight)
        flight = asyncio.get_running_loop().create_future()
        self._inflight[key] = flight
        try:
            self.loads += 1
            rendered = await load()
        except BaseException as exc:
            flight.set_exception(exc)
            # Waiters get the error; nobody else retrieves it, so mark it retrieved.
            flight.exception()
            raise
        finally:
            del self._inflight[key]
        flight.set_result(rendered)
        if self._ttl > 0:
            self._store(key, rendered)
        return rendered

    def peek(self, key: str) -> RenderedBody | None:
        """The rendered answer for ``key`` if it is cached and fresh, without loading it."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        return None

    def invalidate(self, key: str) -> None:
        self._entries.pop(key, None)

    def _store(self, key: str, rendered: RenderedBody) -> None:
        self._entries[key] = (self._clock() + self._ttl, rendered)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


def cached_response(
    request: web.Request,
    rendered: RenderedBody,
    *,
    max_age: int,
    cache_key: str,
    stale_while_revalidate: int | None = None,
) -> web.Response:
    """200 with the body, or 304 when the client already holds this version.

    The answer is public and the same for every anonymous caller while the micro-cache holds
    ``rendered`` under ``cache_key``, so it is also published to the fast lane, which answers
    the next anonymous requests for the same target without parsing them (``core.http.fastlane``).
    ``stale_while_revalidate`` defaults to ``[cache] stale_while_revalidate``.
    """
    if stale_while_revalidate is None:
        stale_while_revalidate = request.app[keys.SETTINGS].cache.stale_while_revalidate
    cache_control = f"public, max-age={max_age}, stale-while-revalidate={stale_while_revalidate}"
    headers = {"ETag": rendered.etag, "Cache-Control": cache_control}
    _publish_to_fast_lane(request, rendered, cache_key, cache_control)
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and etag_matches(if_none_match, rendered.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=rendered.body, content_type="application/json", headers=headers)


def _publish_to_fast_lane(
    request: web.Request, rendered: RenderedBody, cache_key: str, cache_control: str
) -> None:
    if request.method != "GET" or "Authorization" in request.headers:
        return
    try:
        lane = request.app[http_keys.FAST_LANE]
    except KeyError:  # admission (and with it the lane) is off
        return
    if request.app[http_keys.CACHE].peek(cache_key) is not rendered:
        return  # not cached (a TTL of 0, or already replaced): nothing for the lane to check
    route = request.match_info.route
    resource = route.resource
    admission = request.app[admission_keys.ADMISSION]
    rate = admission.policy(request.app, route.name).rate
    lane.publish(
        request.raw_path.encode(),
        cache_key=cache_key,
        rendered=rendered,
        route=resource.canonical if resource is not None else "unmatched",
        rate=rate if admission.settings.ratelimit_enabled else None,
        cache_control=cache_control,
    )


async def cached_document(
    request: web.Request,
    key: str,
    fetch: Callable[[AsyncConnection], Awaitable[Any]],
    *,
    max_age: int,
    missing: str,
) -> web.Response:
    """A public document read through the micro-cache: ``fetch`` returns it, or None for 404.

    Misses are cached too, so a flood of requests for an unknown id costs one read a second.
    """
    app = request.app

    async def load() -> RenderedBody:
        async with app[storage_keys.DATABASE].read() as conn:
            document = await fetch(conn)
        return render(document, meta=document is not None)

    rendered = await app[http_keys.CACHE].get(key, load)
    if not rendered.meta:
        raise NotFound(missing)
    return cached_response(request, rendered, max_age=max_age, cache_key=key)


def etag_matches(header: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weak comparison, or ``*``)."""
    if header.strip() == "*":
        return True
    return any(candidate.strip().removeprefix("W/") == etag for candidate in header.split(","))
