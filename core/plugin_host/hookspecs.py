"""The hooks a Qatysu plugin may implement. Every hook name starts with ``qatysu_``.

A hook may return its value directly or as an awaitable; ``core.plugin_host.plugins.resolve``
accepts both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from aiohttp import web
    from pydantic import BaseModel

    from core.identity.identities import Identity
    from core.identity.jurisdiction import Jurisdiction
    from core.plugin_host.events import Event
    from core.plugin_host.moderation import ModerationResult, TextSubmission
    from core.plugin_host.routing import RouteRegistry
    from core.settings import Settings
    from core.storage.migrations import MigrationSet

PROJECT = "qatysu"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

CleanupContext = Callable[["web.Application"], AsyncIterator[None]]


@hookspec
def qatysu_settings_section() -> tuple[str, type[BaseModel]] | None:
    """Name the settings section this plugin owns and the model that validates it."""


@hookspec(firstresult=True)
def qatysu_jurisdiction(settings: Settings) -> Jurisdiction | None:
    """Return the country's rules; exactly one loaded plugin may implement this hook."""


@hookspec
def qatysu_migrations() -> MigrationSet | None:
    """Return this plugin's versioned schema migrations (its tables and indexes)."""


@hookspec
def qatysu_startup(app: web.Application) -> None:
    """Build this plugin's state for ``app`` from its validated settings, before routes exist."""


@hookspec
def qatysu_add_routes(routes: RouteRegistry, app: web.Application) -> None:
    """Add HTTP routes, each with its admission policy, to the registry."""


@hookspec
def qatysu_cleanup_ctx(app: web.Application) -> Sequence[CleanupContext] | None:
    """Return aiohttp cleanup contexts: startup before ``yield``, cleanup after."""


# Not firstresult: pluggy would stop at an async provider's coroutine, which is not None even
# when it resolves to None, and no later provider would be asked.
@hookspec
def qatysu_identify(
    request: web.Request, token: str
) -> Identity | Awaitable[Identity | None] | None:
    """Turn a bearer token into an Identity; the first provider that answers wins."""


@hookspec
def qatysu_moderate_text(
    submission: TextSubmission, app: web.Application
) -> ModerationResult | Awaitable[ModerationResult | None] | None:
    """Judge a citizen's text before it is stored: allow, flag or reject it."""


@hookspec
def qatysu_event(event: Event, app: web.Application) -> Awaitable[None] | None:
    """React to a committed domain event, such as a petition reaching its threshold."""


@hookspec
def qatysu_demo_seed(app: web.Application) -> Awaitable[Sequence[str]] | Sequence[str] | None:
    """Seed demonstration data; return lines to print for the person running the demo."""
