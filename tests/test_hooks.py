"""Every hookspec is called in an app's life, and every hook works for a third-party plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pluggy
import pytest
import sqlalchemy as sa
from aiohttp import web

from core import keys
from core.host.demo import print_demo
from core.identity.identities import Identity, Role
from core.plugin_host import hookspecs
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.routing import OPERATIONS
from core.storage import keys as storage_keys
from core.storage.migrations import Migration, MigrationSet, create_tables
from tests.support.identities import citizen
from tests.support.petitions import BASE, PETITION, EventRecorder


def declared_hooks() -> set[str]:
    """The names pluggy takes for hookspecs in ``core.plugin_host.hookspecs``, whatever they are."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    return {
        name for name in dir(hookspecs) if manager.parse_hookspec_opts(hookspecs, name) is not None
    }


DECLARED = declared_hooks()


@pytest.fixture
def hook_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every hook called through any plugin manager created from now on."""
    calls: list[str] = []

    def before(
        hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]
    ) -> None:
        calls.append(hook_name)

    def after(
        outcome: pluggy.Result[object],
        hook_name: str,
        hook_impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, object],
    ) -> None:
        """Only the call matters here, not its outcome."""

    class MonitoredPluginManager(pluggy.PluginManager):
        def __init__(self, project_name: str) -> None:
            super().__init__(project_name)
            self.add_hookcall_monitoring(before, after)

    monkeypatch.setattr(pluggy, "PluginManager", MonitoredPluginManager)
    return calls


async def test_every_hookspec_is_called_in_an_apps_life(hook_calls: list[str], make_client) -> None:
    # Nothing built in listens to events: a third-party listener, so that there is one to call.
    listener = EventRecorder()
    client = await make_client(extra_plugins=(listener,))
    filed = await client.post(BASE, json=PETITION, headers=citizen(1))
    assert filed.status == 201, await filed.text()
    assert (await client.get(BASE)).status == 200
    await print_demo(client.app)
    await client.close()

    assert [event.name for event in listener.events][:1] == ["petition.filed"]
    assert sorted(set(hook_calls)) == sorted(DECLARED)


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
            self.events.append(f"start writer={storage_keys.WRITER in app}")
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
    lines = await client.app[plugin_host_keys.PLUGINS].demo_seed(client.app)
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

    await client.app[storage_keys.WRITER].submit(write)
    async with client.app[storage_keys.DATABASE].read() as conn:
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
