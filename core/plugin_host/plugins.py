"""The plugin manager and a typed façade over its hooks.

Plugins are found through the ``qatysu`` entry-point group: the built-in ones (the three
channels, bearer-token identity and the jurisdiction of Kazakhstan) are declared there in
Qatysu's own ``pyproject.toml``, exactly as a third-party package declares its own, so core
never names one. Optional plugins shipped with Qatysu are loaded by dotted name from
``[plugins] enabled``: a module that defines ``plugin`` (a ``Channel``, say) is registered as
that object, any other module as itself. Any plugin can be switched off by its name in
``[plugins] disabled``.

Exactly one loaded plugin implements ``qatysu_jurisdiction`` (``core.identity.jurisdiction``):
with none, or with two, the server does not start, and the message says which.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import pluggy
from pluggy import HookCaller, HookImpl

from core.observability import keys as observability_keys
from core.plugin_host import hookspecs
from core.plugin_host.moderation import ModerationResult, Verdict
from core.settings import SettingsError, validate_section

if TYPE_CHECKING:
    from aiohttp import web
    from pydantic import BaseModel

    from core.identity.identities import Identity
    from core.identity.jurisdiction import Jurisdiction
    from core.plugin_host.events import Event
    from core.plugin_host.hookspecs import CleanupContext
    from core.plugin_host.moderation import TextSubmission
    from core.plugin_host.routing import RouteRegistry
    from core.settings import Settings
    from core.storage.migrations import MigrationSet

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound="BaseModel")


async def resolve(value: T | Awaitable[T]) -> T:
    """The value of a hook result, awaiting it if the plugin returned an awaitable."""
    if inspect.isawaitable(value):
        return await value
    return value


async def resolve_all(values: Iterable[T | Awaitable[T]]) -> list[T]:
    return [await resolve(value) for value in values]


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    module: str
    hooks: tuple[str, ...]
    version: str | None


class PluginHost:
    """Loads plugins and calls their hooks with types."""

    def __init__(self, settings: Settings, *, extra_plugins: Sequence[object] = ()) -> None:
        self.settings = settings
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        # A plugin loaded by name is named after its module; a Channel object has none of its own.
        self._loaded_by_name: set[str] = set()
        for name in settings.plugins.disabled:
            self.pm.set_blocked(name)
        for name in settings.plugins.enabled:
            if self.pm.is_blocked(name):
                continue
            try:
                module = importlib.import_module(name)
            except ImportError as exc:
                raise SettingsError(
                    f"plugins.enabled: cannot import plugin {name!r}: {exc}"
                ) from exc
            self.pm.register(getattr(module, "plugin", module), name=name)
            self._loaded_by_name.add(name)
        self.pm.load_setuptools_entrypoints(hookspecs.PROJECT)
        for plugin in extra_plugins:
            self.pm.register(plugin)
        self.pm.check_pending()
        self._sections = self._collect_sections()
        self._identify_impls: tuple[HookImpl, ...] = ()
        self._identify_callers: list[HookCaller] = []
        self._jurisdiction: Jurisdiction | None = None

    def _collect_sections(self) -> dict[str, BaseModel]:
        sections: dict[str, type[BaseModel]] = {}
        for result in self.pm.hook.qatysu_settings_section():
            if result is None:
                continue
            name, model = result
            if name in sections:
                raise SettingsError(f"two plugins claim the settings section [{name}]")
            sections[name] = model
        unknown = set(self.settings.plugin_sections) - set(sections)
        if unknown:
            raise SettingsError(
                "unknown settings section(s): " + ", ".join(f"[{n}]" for n in sorted(unknown))
            )
        return {
            name: validate_section(name, model, self.settings) for name, model in sections.items()
        }

    def settings_of(self, name: str, model: type[M]) -> M:
        """A plugin's settings section, as validated once when the plugins were loaded."""
        section = self._sections[name]
        if not isinstance(section, model):
            raise TypeError(f"the [{name}] section is a {type(section).__name__}, not {model}")
        return section

    def jurisdiction(self) -> Jurisdiction:
        """The one jurisdiction plugin's rules, built on first use; SettingsError unless exactly
        one loaded plugin provides them."""
        if self._jurisdiction is None:
            impls = self.pm.hook.qatysu_jurisdiction.get_hookimpls()
            if len(impls) != 1:
                found = ", ".join(sorted(impl.plugin_name for impl in impls)) or "none"
                raise SettingsError(
                    "exactly one jurisdiction plugin (implementing qatysu_jurisdiction) must be "
                    f"loaded; found {len(impls)}: {found}"
                )
            jurisdiction = self.pm.hook.qatysu_jurisdiction(settings=self.settings)
            if jurisdiction is None:
                raise SettingsError(
                    f"the jurisdiction plugin {impls[0].plugin_name} gave no jurisdiction"
                )
            self._jurisdiction = jurisdiction
        return self._jurisdiction

    def plugins(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda item: item[0]):
            if plugin is None:
                continue
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
            dist = next((d for p, d in self.pm.list_plugin_distinfo() if p is plugin), None)
            version = getattr(dist, "version", None) if dist is not None else None
            module = (
                name
                if name in self._loaded_by_name
                else str(getattr(plugin, "__name__", type(plugin).__module__))
            )
            infos.append(PluginInfo(name=name, module=module, hooks=hooks, version=version))
        return infos

    def migrations(self) -> list[MigrationSet]:
        return [s for s in self.pm.hook.qatysu_migrations() if s is not None]

    def startup(self, app: web.Application) -> None:
        self.pm.hook.qatysu_startup(app=app)

    def add_routes(self, routes: RouteRegistry, app: web.Application) -> None:
        self.pm.hook.qatysu_add_routes(routes=routes, app=app)

    def cleanup_contexts(self, app: web.Application) -> list[CleanupContext]:
        contexts: list[CleanupContext] = []
        for result in self.pm.hook.qatysu_cleanup_ctx(app=app):
            contexts.extend(result or ())
        return contexts

    async def identify(self, request: web.Request, token: str) -> Identity | None:
        """The first provider's answer that is not None, asking one provider at a time in
        pluggy's calling order: a later provider (the bearer JWT's, which refuses a token it
        cannot verify) is not asked once an earlier one, sync or async, has answered."""
        for ask in self._identity_providers():
            for answer in ask(request=request, token=token):
                identity: Identity | None = await resolve(answer)
                if identity is not None:
                    return identity
        return None

    def _identity_providers(self) -> list[HookCaller]:
        impls = tuple(self.pm.hook.qatysu_identify.get_hookimpls())
        if impls != self._identify_impls:
            # Built once per set of providers, not per request; through pluggy, so that hook
            # monitoring sees each call. Reversed: the order pluggy itself calls them in.
            self._identify_impls = impls
            self._identify_callers = [
                self.pm.subset_hook_caller(
                    "qatysu_identify",
                    remove_plugins=[other.plugin for other in impls if other is not impl],
                )
                for impl in reversed(impls)
            ]
        return self._identify_callers

    async def moderate(self, submission: TextSubmission, app: web.Application) -> ModerationResult:
        """The strictest verdict of all moderation plugins: reject beats flag beats allow."""
        results = await resolve_all(
            self.pm.hook.qatysu_moderate_text(submission=submission, app=app)
        )
        verdicts = [r for r in results if r is not None]
        for wanted in (Verdict.REJECT, Verdict.FLAG):
            for result in verdicts:
                if result.verdict is wanted:
                    chosen: ModerationResult = result
                    return chosen
        return ModerationResult(verdict=Verdict.ALLOW)

    async def emit(self, event: Event, app: web.Application) -> None:
        """Hand ``event`` to every plugin; one that fails, when called or awaited, stops none."""
        impls = self.pm.hook.qatysu_event.get_hookimpls()
        # Reversed: the order pluggy itself calls them in (last registered, or tryfirst, first).
        for impl in reversed(impls):
            # One plugin at a time, but through pluggy, so that hook-call monitoring sees it.
            others = [other.plugin for other in impls if other is not impl]
            alone = self.pm.subset_hook_caller("qatysu_event", remove_plugins=others)
            try:
                await resolve_all(alone(event=event, app=app))
            except Exception:
                log.exception("a plugin failed handling event %s", event.name)

    async def demo_seed(self, app: web.Application) -> list[str]:
        lines: list[str] = []
        for result in await resolve_all(self.pm.hook.qatysu_demo_seed(app=app)):
            lines.extend(result or ())
        return lines


class EventBus:
    """Hands committed events to plugins off the request path, so a slow notifier delays no one."""

    def __init__(self, host: PluginHost, app: web.Application) -> None:
        self._host = host
        self._app = app
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(self, event: Event) -> None:
        """Call only once the change the event describes has committed."""
        self._app[observability_keys.METRICS].events_emitted.labels(event.name).inc()
        task = asyncio.get_running_loop().create_task(self._host.emit(event, self._app))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
