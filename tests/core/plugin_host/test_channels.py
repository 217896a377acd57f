"""A Channel turns a plugin's declarations into hooks: settings, state, routes, sweeper, demo."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.channels import Channel
from core.plugin_host.routing import RoutePolicy, Routes
from core.settings import SettingsError
from core.wire.bodies import json_response


class GreetingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    greeting: str = "hello"
    sweep_interval_seconds: float = Field(default=0.01, gt=0)


@dataclass(frozen=True)
class GreetingState:
    greeting: str
    app_id: int

    @classmethod
    def build(cls, settings: GreetingSettings, app: web.Application) -> GreetingState:
        return cls(greeting=settings.greeting, app_id=id(app))


STATE: web.AppKey[GreetingState] = web.AppKey("greetings.state")
routes = Routes("/test/greetings", tags=("greetings",))


@routes.get("", name="greetings.get", summary="Greet", policy=RoutePolicy(), responses={200: "Hi"})
async def greet(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return json_response({"greeting": state.greeting, "same_app": state.app_id == id(request.app)})


swept: list[int] = []


async def sweep(app: web.Application) -> None:
    swept.append(id(app))


async def demo(app: web.Application) -> list[str]:
    return [f"greeting: {app[STATE].greeting}"]


channel = Channel(
    "greetings",
    settings=GreetingSettings,
    routes=routes,
    state=STATE,
    build=GreetingState.build,
    sweep=sweep,
    demo=demo,
)
quiet = Channel(
    "quiet", settings=GreetingSettings, routes=Routes(), state=STATE, build=GreetingState.build
)


async def test_each_app_gets_state_built_from_its_own_settings(make_client: Any) -> None:
    first = await make_client(extra_plugins=(channel,), greetings={"greeting": "salem"})
    second = await make_client(extra_plugins=(channel,), greetings={"greeting": "privet"})
    assert await (await first.get("/test/greetings")).json() == {
        "greeting": "salem",
        "same_app": True,
    }
    assert await (await second.get("/test/greetings")).json() == {
        "greeting": "privet",
        "same_app": True,
    }


async def test_an_invalid_setting_of_a_channel_stops_the_app_naming_it(make_client: Any) -> None:
    with pytest.raises(SettingsError, match=r"greetings\.greeting"):
        await make_client(extra_plugins=(channel,), greetings={"greeting": 3})


async def test_the_sweeper_runs_at_the_interval_of_the_settings(make_client: Any) -> None:
    swept.clear()
    client = await make_client(extra_plugins=(channel,))
    for _ in range(200):
        if len(swept) >= 2:
            break
        await asyncio.sleep(0.01)
    assert set(swept) == {id(client.app)}
    assert len(swept) >= 2


async def test_the_demo_lines_come_from_the_channel(make_client: Any) -> None:
    client = await make_client(extra_plugins=(channel,), greetings={"greeting": "salem"})
    lines = await client.app[plugin_host_keys.PLUGINS].demo_seed(client.app)
    assert "greeting: salem" in lines


def test_a_channel_without_a_sweeper_or_a_demo_adds_neither() -> None:
    app = web.Application()
    assert quiet.qatysu_cleanup_ctx(app) == ()
    assert asyncio.run(quiet.qatysu_demo_seed(app)) == ()


def test_the_channel_claims_the_section_of_its_name() -> None:
    assert channel.qatysu_settings_section() == ("greetings", GreetingSettings)
    assert channel.qatysu_migrations() is None
