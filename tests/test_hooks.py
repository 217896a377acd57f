"""Every hook works for a third-party plugin, and every hookspec has a test that exercises it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from core import hookspecs, keys
from core.hookspecs import hookimpl
from core.identity import Identity, Role
from core.routing import OPERATIONS
from core.storage.migrations import Migration, MigrationSet, create_tables

TESTS = Path(__file__).resolve().parent


def test_every_hookspec_is_implemented_by_a_test_plugin() -> None:
    hooks = sorted(name for name in vars(hookspecs) if name.startswith("qatysu_"))
    sources = "\n".join(path.read_text() for path in TESTS.rglob("*.py"))
    untested = [hook for hook in hooks if not re.search(rf"def {hook}\(", sources)]
    assert hooks, "no hookspecs found"
    assert untested == []


class PassIdentity:
    """An identity provider for a made-up single sign-on: 'pass:<role>' tokens."""

    @hookimpl
    def qatysu_identify(self, request: web.Request, token: str) -> Identity | None:
        if not token.startswith("pass:"):
            return None
        return Identity(subject="sso-user", role=Role(token.removeprefix("pass:")))


async def test_an_identity_provider_plugin_answers_before_the_bearer_jwt(make_client) -> None:
    client = await make_client(extra_plugins=(PassIdentity(),))
    allowed = await client.get(
        "/api/v1/petitions?status=moderation", headers={"Authorization": "Bearer pass:moderator"}
    )
    assert allowed.status == 200
    refused = await client.get(
        "/api/v1/petitions?status=moderation", headers={"Authorization": "Bearer pass:citizen"}
    )
    assert refused.status == 403
    jwt_still_checked = await client.get(
        "/api/v1/petitions", headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert jwt_still_checked.status == 401


class Lifecycle:
    """Records its cleanup context's start and end, and seeds demo lines."""

    def __init__(self) -> None:
        self.events: list[str] = []

    @hookimpl
    def qatysu_cleanup_ctx(self, app: web.Application) -> list[Any]:
        async def ctx(app: web.Application) -> AsyncIterator[None]:
            self.events.append(f"start writer={keys.WRITER in app}")
            yield
            self.events.append("cleanup")

        return [ctx]

    @hookimpl
    async def qatysu_demo_seed(self, app: web.Application) -> list[str]:
        return ["lifecycle: demo line"]


async def test_a_cleanup_context_plugin_starts_after_storage_and_cleans_up(make_client) -> None:
    plugin = Lifecycle()
    client = await make_client(extra_plugins=(plugin,))
    assert plugin.events == ["start writer=True"]
    await client.close()
    assert plugin.events == ["start writer=True", "cleanup"]


async def test_demo_seed_lines_of_every_plugin_are_collected(make_client) -> None:
    client = await make_client(extra_plugins=(Lifecycle(),))
    lines = await client.app[keys.PLUGINS].demo_seed(client.app)
    assert "lifecycle: demo line" in lines
    assert any(line.startswith("petitions:") for line in lines)


notes = sa.Table(
    "thirdparty_notes",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
)


class Notes:
    """A plugin with a table of its own."""

    @hookimpl
    def qatysu_migrations(self) -> MigrationSet:
        return MigrationSet(
            namespace="thirdparty_notes",
            migrations=[Migration(version=1, description="notes", upgrade=create_tables(notes))],
        )


async def test_a_plugin_migration_creates_its_table_on_each_database(
    make_client, database_url: str
) -> None:
    client = await make_client(database_url, extra_plugins=(Notes(),))

    async def write(conn: Any) -> None:
        await conn.execute(notes.insert().values(text="kept"))

    await client.app[keys.WRITER].submit(write)
    async with client.app[keys.DATABASE].read() as conn:
        assert (await conn.execute(sa.select(notes.c.text))).scalars().all() == ["kept"]


GREETING: web.AppKey[str] = web.AppKey("test.greeting")


class StartupGreeter:
    """Builds its state at start-up from the app's settings, before any route is added."""

    @hookimpl
    def qatysu_startup(self, app: web.Application) -> None:
        app[GREETING] = f"hello from {app[keys.SETTINGS].server.host}"

    @hookimpl
    def qatysu_add_routes(self, routes: Any, app: web.Application) -> None:
        assert GREETING in app

        async def greet(request: web.Request) -> web.Response:
            return web.json_response({"greeting": request.app[GREETING]})

        routes.add(
            "GET", "/test/greet", greet, name="test.greet", summary="Greet", policy=OPERATIONS
        )


async def test_a_startup_hook_builds_state_that_the_routes_read(make_client: Any) -> None:
    client = await make_client(extra_plugins=(StartupGreeter(),))
    response = await client.get("/test/greet")
    assert await response.json() == {"greeting": "hello from 127.0.0.1"}
