"""The plugin host's shared app and request state: plugins, routes, events and the answers kept
for idempotent retries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from core.plugin_host.fanout import Fanout
    from core.plugin_host.idempotency import AnswerStore
    from core.plugin_host.plugins import EventBus, PluginHost
    from core.plugin_host.routing import RouteRegistry

PLUGINS: web.AppKey[PluginHost] = web.AppKey("plugins")
ROUTES: web.AppKey[RouteRegistry] = web.AppKey("routes")
EVENTS: web.AppKey[EventBus] = web.AppKey("events")
ANSWERS: web.AppKey[AnswerStore] = web.AppKey("idempotency_answers")
# Committed changes to every instance's listeners (``core.plugin_host.fanout``).
FANOUT: web.AppKey[Fanout] = web.AppKey("fanout")

IDEMPOTENCY_SCOPE: web.RequestKey[str] = web.RequestKey("idempotency_scope")
