"""create_app: the middleware chain, the cleanup contexts in order, and the state it sets."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from core import keys
from core.admission import keys as admission_keys
from core.admission.middleware import admission_middleware, triage_middleware
from core.host.admission_wiring import admission_ctx
from core.host.app import create_app, readiness_ctx, redis_ctx, storage_ctx
from core.http import keys as http_keys
from core.http.compression import compression_middleware
from core.http.connections import guard_sweeper_ctx
from core.http.lifecycle import event_loop_lag_ctx
from core.http.middlewares import envelope_middleware, identity_middleware
from core.identity import keys as identity_keys
from core.observability import keys as observability_keys
from core.observability.metrics_exposure import metrics_port_ctx
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.fanout import fanout_ctx
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.idempotency import idempotency_ctx
from core.storage import keys as storage_keys
from plugins.kazakhstan.calendar_watch import CALENDAR_WATCH, calendar_watch_ctx
from plugins.kazakhstan.register import REGISTER

# Without the built-in channels, so that what is asserted is exactly what core builds; the
# jurisdiction stays, since core needs exactly one, and keeps its register for its route and
# its calendar's watch.
NO_CHANNELS = {
    "disabled": [
        "plugins.petitions",
        "plugins.information",
        "plugins.consultations",
        "plugins.bearer_tokens",
    ]
}
CORE_STATE = {
    keys.SETTINGS,
    plugin_host_keys.PLUGINS,
    identity_keys.VERIFIER,
    observability_keys.METRICS,
    http_keys.CACHE,
    identity_keys.JURISDICTION,
    REGISTER,
    CALENDAR_WATCH,
    http_keys.READINESS,
    plugin_host_keys.EVENTS,
    plugin_host_keys.FANOUT,
    plugin_host_keys.ROUTES,
    http_keys.OPENAPI_CACHE,
    http_keys.GUARD,
    http_keys.DEPENDENCY_CHECKS,
}


async def plugin_ctx(app: web.Application) -> AsyncIterator[None]:
    yield


class ContextPlugin:
    """A plugin contributing one cleanup context."""

    @hookimpl
    def qatysu_cleanup_ctx(self, app: web.Application) -> list[Any]:
        return [plugin_ctx]


def test_with_admission_off_the_chain_is_the_envelope_then_identity(make_settings) -> None:
    app = create_app(make_settings())
    assert list(app.middlewares) == [
        compression_middleware,
        envelope_middleware,
        identity_middleware,
    ]


def test_with_admission_on_triage_runs_before_identity_and_admission_after_it(
    make_settings,
) -> None:
    app = create_app(make_settings(admission={"enabled": True}))
    assert list(app.middlewares) == [
        compression_middleware,
        envelope_middleware,
        triage_middleware,
        identity_middleware,
        admission_middleware,
    ]


def test_cleanup_contexts_start_storage_first_plugins_after_core_and_readiness_last(
    make_settings,
) -> None:
    app = create_app(make_settings(plugins=NO_CHANNELS), extra_plugins=(ContextPlugin(),))
    assert list(app.cleanup_ctx) == [
        storage_ctx,
        redis_ctx,
        fanout_ctx,
        idempotency_ctx,
        event_loop_lag_ctx,
        guard_sweeper_ctx,
        plugin_ctx,
        calendar_watch_ctx,
        readiness_ctx,
    ]


def test_with_admission_on_its_context_follows_the_loop_lag_probe(make_settings) -> None:
    app = create_app(make_settings(plugins=NO_CHANNELS, admission={"enabled": True}))
    assert list(app.cleanup_ctx) == [
        storage_ctx,
        redis_ctx,
        fanout_ctx,
        idempotency_ctx,
        event_loop_lag_ctx,
        admission_ctx,
        guard_sweeper_ctx,
        calendar_watch_ctx,
        readiness_ctx,
    ]


def test_a_separate_metrics_port_adds_its_context_after_the_sweeper(make_settings) -> None:
    app = create_app(make_settings(plugins=NO_CHANNELS, metrics={"exposure": "separate_port"}))
    assert list(app.cleanup_ctx) == [
        storage_ctx,
        redis_ctx,
        fanout_ctx,
        idempotency_ctx,
        event_loop_lag_ctx,
        guard_sweeper_ctx,
        metrics_port_ctx,
        calendar_watch_ctx,
        readiness_ctx,
    ]


def test_with_admission_off_there_is_no_edge_no_lane_and_no_connection_limit(
    make_settings,
) -> None:
    settings = make_settings(plugins=NO_CHANNELS)
    app = create_app(settings)
    assert set(app) == CORE_STATE
    assert app[http_keys.GUARD].max_connections == sys.maxsize
    assert app[http_keys.GUARD].lane is None


def test_with_admission_on_the_edge_and_fast_lane_are_in_place(make_settings) -> None:
    settings = make_settings(plugins=NO_CHANNELS, admission={"enabled": True})
    app = create_app(settings)
    assert set(app) == CORE_STATE | {admission_keys.ADMISSION, http_keys.FAST_LANE}
    assert app[http_keys.GUARD].max_connections == settings.server.max_connections
    assert app[http_keys.GUARD].lane is app[http_keys.FAST_LANE]


def test_admission_without_the_fast_lane_leaves_the_guard_without_one(make_settings) -> None:
    settings = make_settings(plugins=NO_CHANNELS, admission={"enabled": True, "fast_lane": False})
    app = create_app(settings)
    assert set(app) == CORE_STATE | {admission_keys.ADMISSION}
    assert app[http_keys.GUARD].lane is None


async def test_startup_opens_storage_and_redis_and_shutdown_marks_draining(make_client) -> None:
    client = await make_client(plugins=NO_CHANNELS)
    app = client.app
    assert {
        storage_keys.DATABASE,
        storage_keys.WRITER,
        keys.REDIS,
        plugin_host_keys.ANSWERS,
    } <= set(app)
    assert app[keys.REDIS] is None
    assert (app[http_keys.READINESS].started, app[http_keys.READINESS].draining) == (True, False)
    assert app[http_keys.GUARD].edge is None
    await client.close()
    assert app[http_keys.READINESS].draining is True


async def test_with_admission_on_startup_attaches_the_edge_to_the_guard(make_client) -> None:
    client = await make_client(plugins=NO_CHANNELS, admission={"enabled": True})
    edge = client.app[admission_keys.ADMISSION].edge
    assert edge is not None
    assert client.app[http_keys.GUARD].edge is edge


class FailingStartup:
    """A plugin whose cleanup context fails on entry, after storage has started."""

    @hookimpl
    def qatysu_cleanup_ctx(self, app: web.Application) -> list[Any]:
        async def failing(app: web.Application) -> AsyncIterator[None]:
            raise RuntimeError("this plugin cannot start")
            yield

        return [failing]


async def test_a_failed_startup_closes_the_writer_and_database_that_had_started(
    make_client,
) -> None:
    plugin = FailingStartup()
    started: list[web.Application] = []

    class Recorder:
        @hookimpl
        def qatysu_startup(self, app: web.Application) -> None:
            started.append(app)

    with pytest.raises(RuntimeError, match=r"^this plugin cannot start$"):
        await make_client(plugins=NO_CHANNELS, extra_plugins=(Recorder(), plugin))
    (app,) = started
    writer = app[storage_keys.WRITER]
    assert writer._closing is True
    assert writer._task is None
