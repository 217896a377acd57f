"""A channel in one object: what a plugin declares, turned into the hooks core calls.

A channel plugin (built-in or third-party) instantiates one ``Channel`` and exposes it as the
module's ``plugin`` attribute, or as the object its ``qatysu`` entry point names::

    plugin = Channel("petitions", settings=PetitionSettings, migrations=MIGRATIONS,
                     routes=handlers.routes, state=STATE, build=PetitionState.build,
                     sweep=expire_overdue, demo=seed_petitions)

The same ``Channel`` serves every app of the process (tests make many), so it holds only
declarations. Everything an app needs at run time is built per app at start-up, from that app's
validated settings, and kept under the channel's ``state`` key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from core.background import periodic_ctx
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.hookspecs import hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from core.plugin_host.hookspecs import CleanupContext
    from core.plugin_host.routing import RouteRegistry, RouteSpec
    from core.storage.migrations import MigrationSet


S = TypeVar("S", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Channel(Generic[S, T]):
    """A participation channel: its settings section, schema, routes, state, sweeper and demo.

    ``name`` names the settings section (``[petitions]``) and the sweeper task. ``sweep``
    runs every ``sweep_interval_seconds`` of the channel's settings.
    """

    name: str
    settings: type[S]
    routes: Iterable[RouteSpec]
    state: web.AppKey[T]
    build: Callable[[S, web.Application], T]
    migrations: MigrationSet | None = None
    sweep: Callable[[web.Application], Awaitable[object]] | None = None
    demo: Callable[[web.Application], Awaitable[Sequence[str]]] | None = None
    # The channel's own background work for the app's lifetime, after the sweeper's.
    contexts: Sequence[CleanupContext] = ()

    @hookimpl
    def qatysu_settings_section(self) -> tuple[str, type[BaseModel]]:
        """This channel's settings section and its model."""
        return self.name, self.settings

    @hookimpl
    def qatysu_migrations(self) -> MigrationSet | None:
        """This channel's tables."""
        return self.migrations

    @hookimpl
    def qatysu_startup(self, app: web.Application) -> None:
        """Build this app's channel state from its validated settings."""
        settings = app[plugin_host_keys.PLUGINS].settings_of(self.name, self.settings)
        app[self.state] = self.build(settings, app)

    @hookimpl
    def qatysu_add_routes(self, routes: RouteRegistry) -> None:
        """This channel's declared routes."""
        routes.include(self.routes)

    @hookimpl
    def qatysu_cleanup_ctx(self, app: web.Application) -> Sequence[CleanupContext]:
        """The channel's sweeper, at the interval its settings give, and its own contexts."""
        if self.sweep is None:
            return tuple(self.contexts)
        settings: Any = app[plugin_host_keys.PLUGINS].settings_of(self.name, self.settings)
        interval: float = settings.sweep_interval_seconds
        return [periodic_ctx(f"{self.name}-sweeper", interval, self.sweep), *self.contexts]

    @hookimpl
    async def qatysu_demo_seed(self, app: web.Application) -> Sequence[str]:
        """The channel's demonstration data, and lines to print about it."""
        if self.demo is None:
            return ()
        return await self.demo(app)
