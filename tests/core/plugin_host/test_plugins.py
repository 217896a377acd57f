"""The plugin host: built-ins, third-party plugins (registered or installed), and its hooks."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from core.host.cli import main
from core.identity.identities import Identity, Role
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host import plugins as plugins_module
from core.plugin_host.events import Event
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.moderation import ModerationResult, TextSubmission, Verdict
from core.plugin_host.plugins import EventBus, PluginHost, resolve, resolve_all
from core.plugin_host.routing import RoutePolicy, RouteRegistry
from core.settings import SettingsError, build_settings
from core.wire.bodies import json_response
from tests.support import identities
from tests.support import petitions as petition_data
from tests.support.metrics import events_emitted

FIXTURE_DISTRIBUTION = Path(__file__).resolve().parents[2] / "fixtures" / "thirdparty_plugin"
THIRD_PARTY_MODULE = "qatysu_thirdparty_fixture"

SUBMISSION = TextSubmission(channel="petitions", field="text", text="Light the footpath")


@pytest.fixture
def installed_thirdparty(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture distribution on sys.path, exactly as if it had been pip-installed."""
    monkeypatch.syspath_prepend(str(FIXTURE_DISTRIBUTION))
    monkeypatch.delitem(sys.modules, THIRD_PARTY_MODULE, raising=False)


async def ping(request: web.Request) -> web.Response:
    return json_response({"pong": True})


class PingPlugin:
    @hookimpl
    def qatysu_add_routes(self, routes: RouteRegistry, app: web.Application) -> None:
        routes.add(
            "GET", "/test/ping", ping, name="test.ping", summary="Ping", policy=RoutePolicy()
        )


class Moderator:
    """A moderation plugin with a fixed verdict."""

    def __init__(self, verdict: Verdict | None, *, awaitable: bool = False) -> None:
        self.verdict = verdict
        self.awaitable = awaitable
        self.seen: list[TextSubmission] = []

    @hookimpl
    def qatysu_moderate_text(self, submission: TextSubmission) -> Any:
        self.seen.append(submission)
        result = (
            None
            if self.verdict is None
            else ModerationResult(
                verdict=self.verdict, reason=f"said {self.verdict}", moderator=f"{self.verdict}-bot"
            )
        )
        if not self.awaitable:
            return result

        async def later() -> ModerationResult | None:
            return result

        return later()


class Listener:
    """An event plugin that records what it receives."""

    def __init__(self) -> None:
        self.events: list[str] = []

    @hookimpl
    async def qatysu_event(self, event: Event, app: web.Application) -> None:
        self.events.append(event.name)


class FailingAsyncListener:
    @hookimpl
    async def qatysu_event(self, event: Event, app: web.Application) -> None:
        raise RuntimeError("the webhook is down")


class FailingSyncListener:
    @hookimpl
    def qatysu_event(self, event: Event, app: web.Application) -> None:
        raise RuntimeError("the mailer is misconfigured")


def host(*plugins: object, **sections: Any) -> PluginHost:
    return PluginHost(build_settings(sections), extra_plugins=plugins)


# --- loading ---------------------------------------------------------------------------------


BUILT_INS = {
    "plugins.petitions": "plugins.petitions:plugin",
    "plugins.information": "plugins.information:plugin",
    "plugins.consultations": "plugins.consultations:plugin",
    "plugins.bearer_tokens": "plugins.bearer_tokens",
    "plugins.kazakhstan": "plugins.kazakhstan",
}


def test_the_built_ins_are_declared_in_the_qatysu_entry_point_group() -> None:
    declared = {
        ep.name: ep.value
        for ep in importlib.metadata.entry_points(group="qatysu")
        if ep.dist is not None and ep.dist.name == "qatysu"
    }
    assert declared == BUILT_INS


def test_the_built_ins_are_loaded_through_their_entry_points_with_qatysu_s_version() -> None:
    loaded = host()
    infos = {info.name: info for info in loaded.plugins()}
    for name, value in BUILT_INS.items():
        module_name, _, attribute = value.partition(":")
        module = sys.modules[module_name]
        assert loaded.pm.get_plugin(name) is (getattr(module, attribute) if attribute else module)
        assert infos[name].version == importlib.metadata.version("qatysu")


def test_core_names_no_built_in_plugin() -> None:
    source = Path(plugins_module.__file__ or "").read_text()
    assert not any(name in source for name in BUILT_INS)


async def test_a_registered_third_party_plugin_adds_a_route_that_answers(make_client: Any) -> None:
    client = await make_client(extra_plugins=(PingPlugin(),))
    response = await client.get("/test/ping")
    assert response.status == 200
    assert await response.json() == {"pong": True}


def test_an_installed_plugin_is_loaded_through_its_entry_point(installed_thirdparty: None) -> None:
    loaded = host()
    plugin = loaded.pm.get_plugin("thirdparty")
    assert plugin is sys.modules[THIRD_PARTY_MODULE]
    [info] = [i for i in loaded.plugins() if i.name == "thirdparty"]
    assert info.version == "1.2.3"
    assert info.module == THIRD_PARTY_MODULE
    assert info.hooks == ("qatysu_add_routes",)


async def test_an_installed_plugins_route_answers(
    installed_thirdparty: None, make_client: Any
) -> None:
    client = await make_client()
    response = await client.get("/thirdparty/hello")
    assert response.status == 200
    assert await response.json() == {"hello": "from a third-party plugin"}


def test_without_the_distribution_no_third_party_plugin_is_loaded() -> None:
    assert host().pm.get_plugin("thirdparty") is None


def test_the_plugins_command_lists_an_installed_plugin_with_its_version(
    installed_thirdparty: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "thirdparty 1.2.3: qatysu_add_routes" in lines


def test_a_disabled_plugin_installed_through_an_entry_point_is_not_loaded(
    installed_thirdparty: None,
) -> None:
    loaded = host(plugins={"disabled": ["thirdparty"]})
    assert loaded.pm.get_plugin("thirdparty") is None


async def test_a_disabled_built_in_is_not_loaded_and_its_routes_are_gone(
    make_client: Any,
) -> None:
    assert (
        host(plugins={"disabled": ["plugins.petitions"]}).pm.get_plugin("plugins.petitions") is None
    )
    client = await make_client(plugins={"disabled": ["plugins.petitions"]})
    response = await client.get("/api/v1/petitions")
    assert response.status == 404
    assert (await client.get("/healthz")).status == 200


def test_an_enabled_plugin_that_cannot_be_imported_is_named() -> None:
    with pytest.raises(SettingsError) as caught:
        host(plugins={"enabled": ["plugins.no_such_channel"]})
    assert str(caught.value).startswith(
        "plugins.enabled: cannot import plugin 'plugins.no_such_channel': "
    )


def test_an_enabled_plugin_module_is_registered_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "qatysu_enabled_fixture.py").write_text(
        "from core.plugin_host.hookspecs import hookimpl\n"
        "from core.plugin_host.moderation import ModerationResult, Verdict\n\n\n"
        "@hookimpl\n"
        "def qatysu_moderate_text(submission):\n"
        "    return ModerationResult(verdict=Verdict.FLAG, reason='enabled by name')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "qatysu_enabled_fixture", raising=False)
    loaded = host(plugins={"enabled": ["qatysu_enabled_fixture"]})
    assert loaded.pm.get_plugin("qatysu_enabled_fixture") is sys.modules["qatysu_enabled_fixture"]


def test_a_hookimpl_that_matches_no_hook_is_refused() -> None:
    class Misspelled:
        @hookimpl
        def qatysu_add_route(self) -> None:
            """One letter short of a real hook."""

    from pluggy import PluginValidationError

    with pytest.raises(PluginValidationError):
        host(Misspelled())


def test_two_plugins_claiming_one_section_are_refused() -> None:
    from pydantic import BaseModel

    class Clash:
        @hookimpl
        def qatysu_settings_section(self) -> tuple[str, type[BaseModel]]:
            return "petitions", BaseModel

    with pytest.raises(SettingsError) as caught:
        host(Clash())
    assert str(caught.value) == "two plugins claim the settings section [petitions]"


# --- resolve ---------------------------------------------------------------------------------


async def test_resolve_returns_a_plain_value() -> None:
    assert await resolve(42) == 42
    assert await resolve(None) is None


async def test_resolve_awaits_a_coroutine_and_a_future() -> None:
    async def answer() -> int:
        return 7

    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    future.set_result("done")
    assert await resolve(answer()) == 7
    assert await resolve(future) == "done"


async def test_resolve_all_keeps_order_across_values_and_awaitables() -> None:
    async def two() -> int:
        return 2

    assert await resolve_all([1, two(), 3]) == [1, 2, 3]


# --- moderation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([Verdict.ALLOW, Verdict.FLAG, Verdict.REJECT], Verdict.REJECT),
        ([Verdict.REJECT, Verdict.ALLOW, Verdict.FLAG], Verdict.REJECT),
        ([Verdict.ALLOW, Verdict.FLAG], Verdict.FLAG),
        ([Verdict.FLAG, Verdict.ALLOW], Verdict.FLAG),
        ([Verdict.ALLOW, Verdict.ALLOW], Verdict.ALLOW),
        ([None, Verdict.FLAG], Verdict.FLAG),
        ([None], Verdict.ALLOW),
        ([], Verdict.ALLOW),
    ],
)
async def test_the_strictest_moderation_verdict_wins(
    verdicts: list[Verdict | None], expected: Verdict
) -> None:
    result = await host(*[Moderator(v) for v in verdicts]).moderate(SUBMISSION, web.Application())
    assert result.verdict is expected


async def test_the_winning_verdict_keeps_its_reason_and_moderator() -> None:
    result = await host(Moderator(Verdict.FLAG), Moderator(Verdict.REJECT)).moderate(
        SUBMISSION, web.Application()
    )
    assert result == ModerationResult(
        verdict=Verdict.REJECT, reason="said reject", moderator="reject-bot"
    )


async def test_awaitable_moderation_verdicts_are_resolved() -> None:
    plugins = (Moderator(Verdict.ALLOW), Moderator(Verdict.REJECT, awaitable=True))
    assert (await host(*plugins).moderate(SUBMISSION, web.Application())).verdict is Verdict.REJECT


async def test_every_moderation_plugin_sees_the_submission() -> None:
    plugins = (Moderator(Verdict.ALLOW), Moderator(Verdict.FLAG))
    await host(*plugins).moderate(SUBMISSION, web.Application())
    assert [p.seen for p in plugins] == [[SUBMISSION], [SUBMISSION]]


# --- events ----------------------------------------------------------------------------------


def event() -> Event:
    return Event(name="petition.threshold_reached", subject_id="p-1", payload={"count": 2500})


async def test_an_emitted_event_reaches_an_event_plugin() -> None:
    listener = Listener()
    await host(listener).emit(event(), web.Application())
    assert listener.events == ["petition.threshold_reached"]


async def test_a_failing_async_event_plugin_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before, after = Listener(), Listener()
    loaded = host(before, FailingAsyncListener(), after)
    with caplog.at_level(logging.ERROR, logger="core.plugin_host.plugins"):
        await loaded.emit(event(), web.Application())
    assert before.events == ["petition.threshold_reached"]
    assert after.events == ["petition.threshold_reached"]
    [record] = [r for r in caplog.records if r.name == "core.plugin_host.plugins"]
    assert record.getMessage() == "a plugin failed handling event petition.threshold_reached"
    assert record.exc_info is not None
    assert "the webhook is down" in caplog.text


async def test_a_failing_sync_event_plugin_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # pluggy calls the plugin registered last first, so the failing one runs before the others.
    first, second = Listener(), Listener()
    loaded = host(first, second, FailingSyncListener())
    with caplog.at_level(logging.ERROR, logger="core.plugin_host.plugins"):
        await loaded.emit(event(), web.Application())
    assert first.events == ["petition.threshold_reached"]
    assert second.events == ["petition.threshold_reached"]
    [record] = [r for r in caplog.records if r.name == "core.plugin_host.plugins"]
    assert record.getMessage() == "a plugin failed handling event petition.threshold_reached"
    assert "the mailer is misconfigured" in caplog.text


async def test_the_event_bus_delivers_off_the_request_path_and_drains(make_client: Any) -> None:
    listener = Listener()
    client = await make_client(extra_plugins=(listener,))
    bus: EventBus = client.app[plugin_host_keys.EVENTS]
    bus.emit(event())
    bus.emit(event())
    assert events_emitted(client.app) == {"petition.threshold_reached": 2}
    await bus.drain()
    assert listener.events == ["petition.threshold_reached"] * 2


# --- identity providers --------------------------------------------------------------------


class AbstainingProvider:
    """An identity provider that knows no token, and says so synchronously or asynchronously."""

    def __init__(self, *, awaitable: bool) -> None:
        self.awaitable = awaitable
        self.asked = 0

    @hookimpl
    def qatysu_identify(self, request: web.Request, token: str) -> Any:
        self.asked += 1
        if not self.awaitable:
            return None

        async def later() -> None:
            return None

        return later()


@pytest.mark.parametrize("awaitable", [False, True], ids=["sync", "async"])
async def test_a_provider_that_abstains_leaves_the_token_to_the_next_provider(
    make_client: Any, awaitable: bool
) -> None:
    provider = AbstainingProvider(awaitable=awaitable)
    client = await make_client(extra_plugins=(provider,))
    filed = await client.post(
        "/api/v1/petitions",
        json=petition_data.PETITION,
        headers=identities.citizen(1),
    )
    assert filed.status == 201, await filed.text()
    assert provider.asked == 1


async def test_the_first_provider_that_answers_wins_and_its_coroutine_is_the_only_one_awaited(
    make_client: Any,
) -> None:
    class Answering:
        @hookimpl
        async def qatysu_identify(self, request: web.Request, token: str) -> Identity:
            return Identity(subject="official-9", role=Role.MODERATOR)

    client = await make_client(extra_plugins=(AbstainingProvider(awaitable=True), Answering()))
    listed = await client.get(
        "/api/v1/petitions?status=moderation", headers={"Authorization": "Bearer anything"}
    )
    assert listed.status == 200, await listed.text()
