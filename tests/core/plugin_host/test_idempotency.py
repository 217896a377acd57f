"""``Idempotency-Key`` on every create: a retry gets the first answer and creates nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from core import keys
from core.identity.identities import Identity, Role
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.idempotency import LocalAnswers, key_scope
from core.storage import keys as storage_keys
from plugins.consultations.tables import comments, consultations
from plugins.information.tables import items, requests
from plugins.petitions.tables import petitions
from tests.support.consultations import DRAFT, window
from tests.support.identities import agency, auth, citizen, token
from tests.support.petitions import PETITION
from tests.support.problems import error_fields, problem
from tests.support.services import REDIS_URL, free_port, service_unavailable

REQUEST = {
    "agency": "almaty-akimat",
    "subject": "Snow clearing contracts",
    "text": "Please publish the contracts.",
    "language": "en",
    "public": True,
}
# Fixed once, so that a retry sends the very same body.
WINDOW = window()
ITEM = {"title": "Budget 2026", "body": "The budget.", "category": "budget", "language": "en"}


async def create(client: Any, kind: str, key: str | None, n: int = 1, **changes: Any) -> Any:
    """POST one create of ``kind`` by the n-th caller of its role."""
    headers = {"Idempotency-Key": key} if key is not None else {}
    if kind == "petition":
        url, body, headers = "/api/v1/petitions", {**PETITION}, {**headers, **citizen(n)}
    elif kind == "request":
        url, body, headers = "/api/v1/information-requests", {**REQUEST}, {**headers, **citizen(n)}
    elif kind == "item":
        url, body, headers = "/api/v1/information", {**ITEM}, {**headers, **agency()}
    elif kind == "consultation":
        url, body = "/api/v1/consultations", {**DRAFT, **WINDOW}
        headers = {**headers, **agency()}
    else:
        url = f"/api/v1/consultations/{OPEN_CONSULTATION[id(client)]}/comments"
        body, headers = {"text": "Please publish it."}, {**headers, **citizen(n)}
    return await client.post(url, json={**body, **changes}, headers=headers)


TABLES = {
    "petition": petitions,
    "request": requests,
    "item": items,
    "consultation": consultations,
    "comment": comments,
}
KINDS = list(TABLES)
OPEN_CONSULTATION: dict[int, str] = {}


async def rows(client: Any, kind: str) -> int:
    async with client.server.app[storage_keys.DATABASE].read() as conn:
        count: int = await conn.scalar(sa.select(sa.func.count()).select_from(TABLES[kind]))
    return count


@pytest.fixture
async def ready(client: Any, open_consultation) -> AsyncIterator[Any]:
    """The client, with one open consultation to comment on."""
    OPEN_CONSULTATION[id(client)] = (await open_consultation(client))["id"]
    yield client
    del OPEN_CONSULTATION[id(client)]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_retry_with_the_same_key_gets_the_first_answer_and_creates_nothing(
    ready: Any, kind: str
) -> None:
    before = await rows(ready, kind)
    first = await create(ready, kind, "key-1")
    assert first.status == 201, await first.text()
    first_body = await first.read()
    retry = await create(ready, kind, "key-1")
    assert retry.status == 201
    assert await retry.read() == first_body
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers.get("Location") == first.headers.get("Location")
    assert await rows(ready, kind) == before + 1


@pytest.mark.parametrize("kind", ["petition", "comment", "request"])
async def test_the_same_key_from_another_client_is_its_own_create(ready: Any, kind: str) -> None:
    before = await rows(ready, kind)
    mine = await create(ready, kind, "shared-key", n=1)
    theirs = await create(ready, kind, "shared-key", n=2)
    assert (mine.status, theirs.status) == (201, 201)
    assert "Idempotent-Replayed" not in theirs.headers
    assert (await mine.json())["id"] != (await theirs.json())["id"]
    assert await rows(ready, kind) == before + 2


async def test_creates_without_a_key_are_never_merged(ready: Any) -> None:
    first = await create(ready, "petition", None)
    second = await create(ready, "petition", None)
    assert (await first.json())["id"] != (await second.json())["id"]
    assert await rows(ready, "petition") == 2


async def test_the_same_key_for_a_different_body_is_422_naming_the_header(ready: Any) -> None:
    assert (await create(ready, "petition", "key-2")).status == 201
    other = await create(ready, "petition", "key-2", title="Another title for this petition")
    assert error_fields(await problem(other, 422)) == ["Idempotency-Key"]
    assert await rows(ready, "petition") == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
async def test_a_malformed_key_is_400_naming_the_header(ready: Any, key: str) -> None:
    response = await ready.post(
        "/api/v1/petitions",
        json=PETITION,
        headers={**citizen(), "Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    assert error_fields(await problem(response, 400)) == ["Idempotency-Key"]
    assert await rows(ready, "petition") == 0


async def test_an_error_answer_is_not_kept_but_the_key_stays_bound_to_its_request(
    ready: Any,
) -> None:
    refused = await create(ready, "petition", "key-3", addressee="nobody")
    assert error_fields(await problem(refused, 422)) == ["addressee"]
    again = await create(ready, "petition", "key-3", addressee="nobody")
    assert error_fields(await problem(again, 422)) == ["addressee"]
    assert "Idempotent-Replayed" not in again.headers
    corrected = await create(ready, "petition", "key-3")
    assert error_fields(await problem(corrected, 422)) == ["Idempotency-Key"]
    assert (await create(ready, "petition", "key-3b")).status == 201
    assert await rows(ready, "petition") == 1


async def test_a_retry_while_the_first_is_still_running_is_409(ready: Any) -> None:
    writer = ready.server.app[storage_keys.WRITER]
    released = asyncio.Event()
    entered = asyncio.Event()

    async def gate(conn: Any) -> None:
        entered.set()
        await released.wait()

    held = asyncio.create_task(writer.submit(gate))
    await entered.wait()
    first = asyncio.create_task(create(ready, "petition", "key-4"))
    for _ in range(1000):
        if writer.queue_length == 1:
            break
        await asyncio.sleep(0.005)
    body = await problem(await create(ready, "petition", "key-4"), 409)
    assert body["type"] == "/problems/idempotency-in-progress"
    released.set()
    await held
    assert (await first).status == 201
    assert await rows(ready, "petition") == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_a_retry_after_an_unknown_outcome_names_the_stored_resource_not_a_new_one(
    ready: Any, kind: str
) -> None:
    """The first attempt committed, but its answer was lost with the outcome unknown, so no
    answer was kept (emptying the store stands for that). The retry runs again, finds the
    resource its key names already stored, and answers with it."""
    before = await rows(ready, kind)
    first = await create(ready, kind, "key-5")
    assert first.status == 201
    answers = ready.server.app[plugin_host_keys.ANSWERS]
    assert isinstance(answers, LocalAnswers)
    answers._entries.clear()
    retry = await create(ready, kind, "key-5")
    assert retry.status == 201
    assert "Idempotent-Replayed" not in retry.headers
    assert (await retry.json())["id"] == (await first.json())["id"]
    assert await rows(ready, kind) == before + 1


async def test_answers_kept_in_redis_are_replayed_by_another_instance(
    make_client: Any, tmp_path: Any, redis_url: str
) -> None:
    shared = {"url": redis_url, "key_prefix": f"qatysu-test-{uuid.uuid4().hex}:"}
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    one = await make_client(database, redis=shared)
    other = await make_client(database, redis=shared)
    first = await create(one, "petition", "key-6")
    assert first.status == 201
    retry = await create(other, "petition", "key-6")
    assert retry.status == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await retry.read() == await first.read()
    assert await rows(one, "petition") == 1


async def test_with_redis_down_answers_are_kept_in_the_process_and_creates_go_on(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    dead = {"url": f"redis://127.0.0.1:{free_port()}/0", "key_prefix": "dead:"}
    client = await make_client(redis=dead)
    first = await create(client, "petition", "key-7")
    retry = await create(client, "petition", "key-7")
    assert (first.status, retry.status) == (201, 201)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await rows(client, "petition") == 1
    assert "Redis unavailable for idempotency keys" in caplog.text


# -- scoped by caller, bound to the request, on both stores ---------------------------------


def test_the_scope_tells_apart_every_role_agency_and_subject() -> None:
    callers = [
        Identity(subject="official-1", role=Role.AGENCY, agency="almaty-akimat"),
        Identity(subject="official-1", role=Role.AGENCY, agency="astana-akimat"),
        Identity(subject="official-1", role=Role.MODERATOR),
        Identity(subject="official-1", role=Role.OPERATOR),
        Identity(subject="official-2", role=Role.AGENCY, agency="almaty-akimat"),
    ]
    scopes = {key_scope("information.publish", caller, "k") for caller in callers}
    assert len(scopes) == len(callers)
    assert key_scope("a", callers[0], "k") != key_scope("b", callers[0], "k")
    assert key_scope("a", callers[0], "k") != key_scope("a", callers[0], "k2")


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, make_client: Any) -> AsyncIterator[Store]:
    """A client whose answers are kept in the process, or in the shared Redis."""
    if request.param == "local":
        yield Store(await make_client(), None)
        return
    probe = aioredis.Redis.from_url(REDIS_URL)
    try:
        await probe.ping()
    except Exception as exc:
        service_unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await probe.aclose()
    prefix = f"qatysu-test-{uuid.uuid4().hex}:"
    client = await make_client(redis={"url": REDIS_URL, "key_prefix": prefix})
    try:
        yield Store(client, prefix)
    finally:
        redis = client.app[keys.REDIS]
        found = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if found:
            await redis.delete(*found)


@dataclass
class Store:
    client: Any
    redis_prefix: str | None

    async def forget(self, kind: str) -> None:
        """Drop every kept answer (``answer``), as 24 hours do, or every binding (``bound``)."""
        if self.redis_prefix is None:
            local = self.client.app[plugin_host_keys.ANSWERS]
            assert isinstance(local, LocalAnswers)
            (local._entries if kind == "answer" else local._bindings).clear()
            return
        redis = self.client.app[keys.REDIS]
        pattern = f"{self.redis_prefix}idempotency:{kind}:*"
        found = [key async for key in redis.scan_iter(match=pattern)]
        assert found
        await redis.delete(*found)


async def publish(client: Any, code: str, key: str, title: str = "Budget 2026") -> Any:
    """official-1 of agency ``code`` publishes an item with ``key``."""
    headers = {
        **auth(token("agency", "official-1", agency=code, name="Official")),
        "Idempotency-Key": key,
    }
    return await client.post("/api/v1/information", json={**ITEM, "title": title}, headers=headers)


async def test_one_subject_of_two_agencies_never_shares_a_key(store: Store) -> None:
    """On 6a18a39 Astana's publish got 201 with Idempotent-Replayed and Almaty's item."""
    almaty = await publish(store.client, "almaty-akimat", "k-1")
    astana = await publish(store.client, "astana-akimat", "k-1")
    assert (almaty.status, astana.status) == (201, 201)
    assert "Idempotent-Replayed" not in astana.headers
    assert (await astana.json())["agency"] == "astana-akimat"
    assert (await almaty.json())["id"] != (await astana.json())["id"]
    assert await rows(store.client, "item") == 2


async def test_another_body_under_a_key_is_422_after_its_answer_expired(store: Store) -> None:
    """On 6a18a39 this answered 201 with the first item and dropped the new title."""
    assert (await publish(store.client, "almaty-akimat", "k-2")).status == 201
    await store.forget("answer")
    other = await publish(store.client, "almaty-akimat", "k-2", title="Budget 2027")
    assert error_fields(await problem(other, 422)) == ["Idempotency-Key"]
    assert await rows(store.client, "item") == 1


async def test_the_same_body_after_its_answer_expired_names_the_first_resource(
    store: Store,
) -> None:
    first = await publish(store.client, "almaty-akimat", "k-3")
    await store.forget("answer")
    retry = await publish(store.client, "almaty-akimat", "k-3")
    assert retry.status == 201
    assert (await retry.json())["id"] == (await first.json())["id"]
    assert await rows(store.client, "item") == 1


async def test_once_even_the_binding_is_gone_another_body_is_created_not_dropped(
    store: Store,
) -> None:
    first = await publish(store.client, "almaty-akimat", "k-4")
    await store.forget("answer")
    await store.forget("bound")
    other = await publish(store.client, "almaty-akimat", "k-4", title="Budget 2027")
    assert other.status == 201
    assert (await other.json())["title"] == "Budget 2027"
    assert (await other.json())["id"] != (await first.json())["id"]
    assert await rows(store.client, "item") == 2
