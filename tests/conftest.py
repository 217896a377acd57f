"""Shared fixtures: real databases (SQLite and PostgreSQL), Redis, settings, clients, and the
steps through the API that tests of several packages take (file and sign a petition, open a
consultation).

PostgreSQL and Redis are the real servers of this machine. Where one is unreachable its tests
skip with the reason, unless ``QATYSU_REQUIRE_SERVICES=1`` (CI), where they fail instead. Every
test that needs one is marked ``postgres`` or ``redis`` here, from the fixtures it uses, so that
``-m "not postgres and not redis"`` runs without them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestClient, TestServer

from core.host.app import create_app
from core.http import keys as http_keys
from core.http.cache import cache_key
from core.settings import Settings, build_settings
from core.storage import keys as storage_keys
from plugins.petitions.sweeper import expire_overdue
from plugins.petitions.tables import petitions, signatures
from tests.support import consultations as consultation_data
from tests.support import petitions as petition_data
from tests.support.admission import RedisServerProcess
from tests.support.identities import IIN_SECRET, JWT_SECRET, agency, citizen, moderator
from tests.support.raw_http import LaneLog
from tests.support.services import (
    POSTGRES_ADMIN_DSN,
    REDIS_URL,
    REGISTER,
    ClientFactory,
    PostgresServer,
    SettingsFactory,
    service_unavailable,
)
from tests.support.slowbodies import SlowBody, slow_body

# --- which server a test needs ---------------------------------------------------------------

POSTGRES_FIXTURES = frozenset({"postgres_available", "postgres_server"})
REDIS_FIXTURES = frozenset({"redis_url", "redis_client", "key_prefix", "redis_server"})
# Fixtures parametrised over the database kinds; their "postgresql" case needs the server.
DATABASE_PARAMETERS = ("database_url", "live_server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        if fixtures & POSTGRES_FIXTURES or any(
            params.get(name) == "postgresql" for name in DATABASE_PARAMETERS
        ):
            item.add_marker(pytest.mark.postgres)
        if fixtures & REDIS_FIXTURES:
            item.add_marker(pytest.mark.redis)


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterable[None]:
    """``qatysu`` commands run in-process configure the root logger; undo it after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# --- databases and Redis ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3)
        await conn.close()

    # In a thread of its own: the first to ask may be an async fixture, inside a running loop.
    with ThreadPoolExecutor(max_workers=1) as thread:
        failure = thread.submit(asyncio.run, probe()).exception()
    if failure is not None:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_DSN}: {failure}"
    return None


@pytest.fixture
def postgres_server(postgres_available: str | None) -> PostgresServer:
    """The test PostgreSQL (a skip, or a failure in CI, when it does not answer); whoever
    creates a database on it drops it with ``drop_all``."""
    if postgres_available is not None:
        service_unavailable(postgres_available)
    return PostgresServer()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each kind: SQLite in a temp dir, PostgreSQL created per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'qatysu.db'}"
        return
    # Asked for here, not in the signature, so that SQLite cases are not marked as needing it.
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = await server.create_database()
    try:
        yield url
    finally:
        await server.drop_all()


@pytest.fixture
async def redis_url() -> str:
    """The test Redis's URL, once it answers (a skip, or a failure in CI, when it does not)."""
    import redis.asyncio as aioredis

    probe = aioredis.Redis.from_url(REDIS_URL)
    try:
        await probe.ping()
    except Exception as exc:
        service_unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await probe.aclose()
    return REDIS_URL


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServerProcess]:
    """A private redis-server on a free port, for a test that kills and restarts it."""
    executable = shutil.which("redis-server")
    if executable is None:
        service_unavailable("redis-server is not on PATH")
    server = RedisServerProcess(executable)
    try:
        await server.start()
        yield server
    finally:
        await server.kill()


# --- settings and clients ------------------------------------------------------------------


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings for a test: secrets, a temp data dir, and admission off unless asked for."""

    def factory(database_url: str | None = None, **sections: dict[str, Any]) -> Settings:
        layered: dict[str, Any] = {
            "server": {"data_dir": str(tmp_path), "access_log": False, "validate_responses": True},
            "identity": {"jwt_secret": JWT_SECRET, "iin_hash_secret": IIN_SECRET},
            "database": {
                "url": database_url or f"sqlite:///{tmp_path / 'qatysu.db'}",
                "migrate_on_start": True,
            },
            "admission": {"enabled": False},
            "metrics": {},
            # A copy: a test's own kazakhstan settings update it, never the shipped register.
            "kazakhstan": dict(REGISTER["kazakhstan"]),
        }
        for name, values in sections.items():
            layered.setdefault(name, {}).update(values)
        return build_settings(layered)

    return factory


@pytest.fixture
async def aiohttp_client(
    aiohttp_client_cls: type[TestClient[Any, Any]],
) -> AsyncIterator[Callable[..., Awaitable[TestClient[Any, Any]]]]:
    """pytest-aiohttp's factory, except that a client whose start fails is closed at once.

    pytest-aiohttp keeps only the clients that started. A failed start-up would leave behind
    its session and the cleanup contexts that had started before the failing one (the writer,
    the SQLite connection), which then fail a later test through an unraisable ResourceWarning.
    """
    clients: list[TestClient[Any, Any]] = []

    async def start(
        app_or_server: web.Application | BaseTestServer,
        *,
        server_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TestClient[Any, Any]:
        server = (
            TestServer(app_or_server, **(server_kwargs or {}))
            if isinstance(app_or_server, web.Application)
            else app_or_server
        )
        client = aiohttp_client_cls(server, **kwargs)
        clients.append(client)
        try:
            await client.start_server()
        except BaseException:
            await client.close()
            raise
        return client

    yield start
    while clients:
        await clients.pop().close()


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Any], make_settings: SettingsFactory
) -> ClientFactory:
    """Start the full app on a test server: ``await make_client(database_url, **sections)``."""

    async def factory(
        database_url: str | None = None, *, extra_plugins: tuple[object, ...] = (), **sections: Any
    ) -> TestClient[web.Request, web.Application]:
        app = create_app(make_settings(database_url, **sections), extra_plugins=extra_plugins)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return factory


@pytest.fixture
async def client(
    make_client: ClientFactory, database_url: str
) -> TestClient[web.Request, web.Application]:
    """The full app on each database."""
    result: TestClient[web.Request, web.Application] = await make_client(database_url)
    return result


@pytest.fixture
async def slow_bodies() -> AsyncIterator[Callable[..., Awaitable[SlowBody]]]:
    """Open requests whose body comes slowly (``tests.support.slowbodies.slow_body``); each is
    closed after the test, even a failed one."""
    opened: list[SlowBody] = []

    async def open_one(port: int, **request: Any) -> SlowBody:
        slow = await slow_body(port, **request)
        opened.append(slow)
        return slow

    yield open_one
    for slow in opened:
        slow.close()


# --- the database behind a client ----------------------------------------------------------


@pytest.fixture
def execute() -> Callable[[Any, Any], Awaitable[None]]:
    """Run a statement through the app's writer, as the plugins' own writes are."""

    async def run(client: Any, statement: Any) -> None:
        async def write(conn: Any) -> None:
            await conn.execute(statement)

        await client.app[storage_keys.WRITER].submit(write)

    return run


# --- petitions -----------------------------------------------------------------------------

Step = Callable[..., Awaitable[Any]]


@pytest.fixture
def file_petition() -> Step:
    async def file(client: Any, author: int = 1, **fields: Any) -> dict[str, Any]:
        response = await client.post(
            petition_data.BASE, json={**petition_data.PETITION, **fields}, headers=citizen(author)
        )
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    return file


@pytest.fixture
def moderate() -> Step:
    async def decide(
        client: Any,
        petition_id: str,
        decision: str,
        reason: str | None = None,
        reason_code: str | None = None,
    ) -> Any:
        payload: dict[str, Any] = {"decision": decision}
        if reason is not None:
            payload["reason"] = reason
        if reason_code is not None:
            payload["reason_code"] = reason_code
        return await client.post(
            petition_data.petition_url(petition_id, "/moderation"),
            json=payload,
            headers=moderator(),
        )

    return decide


@pytest.fixture
def approved_petition(file_petition: Step, moderate: Step) -> Step:
    async def approved(client: Any, **fields: Any) -> dict[str, Any]:
        petition = await file_petition(client, **fields)
        response = await moderate(client, petition["id"], "approve")
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    return approved


@pytest.fixture
def sign() -> Step:
    async def signed(client: Any, petition_id: str, n: int) -> Any:
        return await client.post(
            petition_data.petition_url(petition_id, "/signatures"), headers=citizen(n)
        )

    return signed


@pytest.fixture
def sign_by(sign: Step) -> Step:
    """Sign one citizen after another; every signature must be accepted."""

    async def signed(client: Any, petition_id: str, numbers: Iterable[int]) -> list[Any]:
        receipts = []
        for n in numbers:
            response = await sign(client, petition_id, n)
            assert response.status == 201, await response.text()
            receipts.append(await response.json())
        return receipts

    return signed


@pytest.fixture
def answer() -> Step:
    async def answered(
        client: Any,
        petition_id: str,
        code: str = "almaty-bostandyq-akimat",
        text: str = "The footpath will be lit by spring.",
    ) -> Any:
        return await client.post(
            petition_data.petition_url(petition_id, "/response"),
            json={"text": text},
            headers=agency(code),
        )

    return answered


@pytest.fixture
def read_back() -> Step:
    """The petition as a moderator reads it (moderators see every status)."""

    async def read(client: Any, petition_id: str) -> dict[str, Any]:
        response = await client.get(petition_data.petition_url(petition_id), headers=moderator())
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    return read


@pytest.fixture
def move_deadlines_to_past(execute: Step) -> Step:
    async def move(client: Any, petition_id: str) -> None:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        await execute(
            client,
            sa.update(petitions)
            .where(petitions.c.id == petition_id)
            .values(restricted_until=past, collection_ends_at=past),
        )
        # Reads are micro-cached for a second; a test that rewrites a row must not see the old.
        client.app[http_keys.CACHE].invalidate(cache_key("petitions", petition_id))

    return move


@pytest.fixture
def petition_in(
    file_petition: Step,
    moderate: Step,
    approved_petition: Step,
    sign_by: Step,
    answer: Step,
    read_back: Step,
    move_deadlines_to_past: Step,
) -> Step:
    """A petition brought to a status through the API; needs a client with SMALL_FIGURES."""

    async def brought(client: Any, status: str, **fields: Any) -> dict[str, Any]:
        if status == "moderation":
            petition: dict[str, Any] = await file_petition(client, **fields)
            return petition
        if status == "rejected":
            petition = await file_petition(client, **fields)
            response = await moderate(
                client, petition["id"], "reject", "Asks for a referendum", "referendums"
            )
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
            return body
        petition = await approved_petition(client, **fields)
        petition_id = petition["id"]
        if status == "restricted":
            return petition
        if status == "expired":
            await move_deadlines_to_past(client, petition_id)
            assert await expire_overdue(client.app) == [petition_id]
            expired: dict[str, Any] = await read_back(client, petition_id)
            return expired
        signers = {
            "public": petition_data.CO_SIGNER_MINIMUM,
            "awaiting_response": petition_data.THRESHOLD,
            "answered": petition_data.THRESHOLD,
        }
        await sign_by(client, petition_id, range(500, 500 + signers[status]))
        if status == "answered":
            response = await answer(client, petition_id)
            assert response.status == 200, await response.text()
        result: dict[str, Any] = await read_back(client, petition_id)
        assert result["status"] == status
        return result

    return brought


@pytest.fixture
def stored_petition() -> Step:
    async def stored(client: Any, petition_id: str) -> Any:
        async with client.app[storage_keys.DATABASE].read() as conn:
            result = await conn.execute(sa.select(petitions).where(petitions.c.id == petition_id))
            return result.one()

    return stored


@pytest.fixture
def signature_hashes() -> Step:
    async def hashes(client: Any, petition_id: str) -> list[str]:
        async with client.app[storage_keys.DATABASE].read() as conn:
            result = await conn.execute(
                sa.select(signatures.c.citizen_hash).where(signatures.c.petition_id == petition_id)
            )
            return [row.citizen_hash for row in result]

    return hashes


# --- consultations -------------------------------------------------------------------------


@pytest.fixture
def open_consultation() -> Step:
    async def opened(client: Any, code: str = "almaty-akimat", **fields: Any) -> dict[str, Any]:
        response = await client.post(
            consultation_data.BASE,
            json={**consultation_data.DRAFT, **consultation_data.window(), **fields},
            headers=agency(code),
        )
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    return opened


@pytest.fixture
def comment() -> Step:
    async def commented(client: Any, consultation_id: str, n: int = 1, **fields: Any) -> Any:
        body = {"text": "Please publish the queue.", **fields}
        return await client.post(
            f"{consultation_data.BASE}/{consultation_id}/comments", json=body, headers=citizen(n)
        )

    return commented


@pytest.fixture
def lane_log() -> Iterator[LaneLog]:
    """The fast lane's access-log lines while the test runs; its servers need the access log."""
    logger = logging.getLogger("qatysu.access")
    handler, level = LaneLog(), logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)
