"""The micro-cache: one load per key per TTL across concurrent callers, and HTTP validators."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import make_mocked_request

from core.http.cache import MicroCache, RenderedBody, cached_response, render


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts its calls; each call renders a new version. ``gate`` holds every load open."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.calls = 0
        self.gate = gate

    async def __call__(self) -> RenderedBody:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return render({"version": self.calls})


async def test_a_thousand_concurrent_misses_of_one_key_load_it_once() -> None:
    cache = MicroCache(ttl=1.0, max_entries=10)
    gate = asyncio.Event()
    loader = Loader(gate)
    readers = [asyncio.create_task(cache.get("petition:1", loader)) for _ in range(1000)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*readers)
    assert loader.calls == 1
    assert cache.loads == 1
    assert {r.body for r in results} == {b'{"version":1}'}


async def test_different_keys_load_separately() -> None:
    cache = MicroCache(ttl=1.0, max_entries=10)
    loader = Loader()
    await cache.get("a", loader)
    await cache.get("b", loader)
    assert loader.calls == 2


async def test_an_entry_is_served_until_its_ttl_then_reloaded() -> None:
    clock = Clock()
    cache = MicroCache(ttl=1.0, max_entries=10, clock=clock)
    loader = Loader()
    assert (await cache.get("k", loader)).body == b'{"version":1}'
    clock.now += 0.999
    assert (await cache.get("k", loader)).body == b'{"version":1}'
    assert cache.hits == 1
    clock.now += 0.001
    assert (await cache.get("k", loader)).body == b'{"version":2}'
    assert loader.calls == 2


async def test_a_zero_ttl_shares_concurrent_loads_but_keeps_nothing() -> None:
    cache = MicroCache(ttl=0.0, max_entries=10)
    gate = asyncio.Event()
    loader = Loader(gate)
    readers = [asyncio.create_task(cache.get("k", loader)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*readers)
    assert loader.calls == 1
    await cache.get("k", loader)
    assert loader.calls == 2


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache = MicroCache(ttl=1.0, max_entries=10)
    gate = asyncio.Event()
    calls = 0

    async def failing() -> RenderedBody:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise LookupError("the database is away")

    readers = [asyncio.create_task(cache.get("k", failing)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*readers, return_exceptions=True)
    assert calls == 1
    assert all(isinstance(r, LookupError) for r in results)
    assert {str(r) for r in results} == {"the database is away"}
    loader = Loader()
    assert (await cache.get("k", loader)).body == b'{"version":1}'
    assert loader.calls == 1


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    cache = MicroCache(ttl=1.0, max_entries=10)
    gate = asyncio.Event()
    loader = Loader(gate)
    leader = asyncio.create_task(cache.get("k", loader))
    await asyncio.sleep(0)
    follower = asyncio.create_task(cache.get("k", loader))
    await asyncio.sleep(0)
    follower.cancel()
    gate.set()
    assert (await leader).body == b'{"version":1}'
    with pytest.raises(asyncio.CancelledError):
        await follower
    assert loader.calls == 1


async def test_the_oldest_entry_is_evicted_beyond_max_entries() -> None:
    cache = MicroCache(ttl=60.0, max_entries=2)
    loaders = {key: Loader() for key in ("a", "b", "c")}
    for key in ("a", "b", "c"):
        await cache.get(key, loaders[key])
    await cache.get("b", loaders["b"])
    await cache.get("c", loaders["c"])
    assert (loaders["b"].calls, loaders["c"].calls) == (1, 1)
    await cache.get("a", loaders["a"])
    assert loaders["a"].calls == 2


async def test_invalidate_forces_the_next_read_to_load() -> None:
    cache = MicroCache(ttl=60.0, max_entries=10)
    loader = Loader()
    await cache.get("k", loader)
    cache.invalidate("k")
    cache.invalidate("never-cached")
    assert (await cache.get("k", loader)).body == b'{"version":2}'


def test_render_gives_a_strong_etag_that_follows_the_body() -> None:
    first = render({"a": 1}, meta="owner")
    assert first.body == b'{"a":1}'
    assert first.meta == "owner"
    assert first.etag.startswith('"')
    assert first.etag.endswith('"')
    assert first.etag == render({"a": 1}).etag
    assert first.etag != render({"a": 2}).etag


RENDERED = render({"id": "p-1", "signature_count": 3})


def respond(if_none_match: str | None) -> tuple[int, bytes, dict[str, str]]:
    headers = {} if if_none_match is None else {"If-None-Match": if_none_match}
    request = make_mocked_request("GET", "/api/v1/petitions/p-1", headers=headers)
    response = cached_response(
        request, RENDERED, max_age=1, cache_key="petitions:p-1", stale_while_revalidate=5
    )
    assert isinstance(response.body, bytes | None)
    return response.status, response.body or b"", dict(response.headers)


@pytest.mark.parametrize(
    "header",
    [
        RENDERED.etag,
        f"W/{RENDERED.etag}",
        "*",
        f'"other", {RENDERED.etag}',
        f'"other",W/{RENDERED.etag}',
    ],
)
def test_a_matching_if_none_match_is_304_without_a_body(header: str) -> None:
    status, body, headers = respond(header)
    assert status == 304
    assert body == b""
    assert headers["ETag"] == RENDERED.etag
    assert headers["Cache-Control"] == "public, max-age=1, stale-while-revalidate=5"


@pytest.mark.parametrize("header", [None, '"stale"', 'W/"stale"', RENDERED.etag.strip('"'), ""])
def test_no_or_another_if_none_match_is_200_with_the_body(header: str | None) -> None:
    status, body, headers = respond(header)
    assert status == 200
    assert body == RENDERED.body
    assert headers["Content-Type"] == "application/json"
    assert headers["ETag"] == RENDERED.etag
    assert headers["Cache-Control"] == "public, max-age=1, stale-while-revalidate=5"
