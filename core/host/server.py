"""Starting the HTTP server and draining it: the lifecycle around ``create_app``.

Single-process ``qatysu serve`` and every gunicorn worker (``core.host.gunicorn_worker``) serve
through ``start_app``, so the connection guard (cap, head timeout, edge shedding) and the drain are
the same in every mode.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from core import keys
from core.host.app import create_app
from core.host.demo import print_demo
from core.http import keys as http_keys
from core.http.accesslog import AccessLogger
from core.http.connections import GuardedTCPSite
from core.settings import Settings
from core.startup import StartupFailure

# Young objects per collection. Python's default (700) runs a collection every few requests;
# nearly everything a request allocates is freed by reference counting anyway, and profiles of
# a signing flood showed the collector at about a tenth of the process's time.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Collect less often, and never again walk what startup built (settings, routes, plugins).

    Cyclic garbage still goes: every ``GC_YOUNG_THRESHOLD`` allocations instead of every 700.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


@dataclass
class RunningServer:
    app: web.Application
    runner: web.AppRunner
    port: int

    async def drain(self) -> None:
        """Readiness off, wait the grace period, stop accepting, finish in-flight, flush writes."""
        settings = self.app[keys.SETTINGS]
        self.app[http_keys.READINESS].draining = True
        if settings.server.drain_grace > 0:
            await asyncio.sleep(settings.server.drain_grace)
        await self.runner.cleanup()


def writer_flush_allowance(settings: Settings) -> float:
    """Seconds the writer is given to commit what is queued once in-flight requests are done.

    Two commit timeouts: a batch already committing may take one, the final batch another.
    """
    return 2 * settings.writer.commit_timeout


def shutdown_budget(settings: Settings) -> float:
    """Seconds a whole drain may take: readiness grace, in-flight requests, the writer's flush.

    A supervisor (gunicorn's ``graceful_timeout``, Docker's stop grace period) must wait at least
    this long before it kills the process, or acknowledged work may still be in the writer.
    """
    server = settings.server
    return server.drain_grace + server.shutdown_timeout + writer_flush_allowance(settings)


def make_runner(app: web.Application) -> web.AppRunner:
    settings = app[keys.SETTINGS]
    return web.AppRunner(
        app,
        handle_signals=False,
        access_log=logging.getLogger("qatysu.access") if settings.server.access_log else None,
        access_log_class=AccessLogger,
        keepalive_timeout=settings.server.keepalive_timeout,
        # A citizen who closed the tab frees the handler at once instead of at its end.
        handler_cancellation=True,
        # In-flight requests get this much; the writer's flush comes after, on its own budget.
        shutdown_timeout=settings.server.shutdown_timeout,
    )


def make_site(
    runner: web.AppRunner,
    *,
    host: str | None = None,
    port: int | None = None,
    sock: socket.socket | None = None,
    reuse_port: bool = False,
) -> web.BaseSite:
    """The one way a listening site is made: every connection passes the app's guard."""
    return GuardedTCPSite(
        runner,
        runner.app[http_keys.GUARD],
        host=host,
        port=port,
        sock=sock,
        backlog=runner.app[keys.SETTINGS].server.listen_backlog,
        reuse_port=reuse_port or None,
    )


async def start_app(
    app: web.Application,
    *,
    sockets: Sequence[socket.socket] = (),
    reuse_port: bool = False,
    demo: bool = False,
) -> RunningServer:
    """Serve ``app`` on the given listening sockets, or on the configured host and port."""
    settings = app[keys.SETTINGS]
    runner = make_runner(app)
    try:
        await runner.setup()
        if demo:
            await print_demo(app)
        tune_garbage_collector()
        if sockets:
            sites = [make_site(runner, sock=sock) for sock in sockets]
        else:
            sites = [
                make_site(
                    runner,
                    host=settings.server.host,
                    port=settings.server.port,
                    reuse_port=reuse_port,
                )
            ]
        for site in sites:
            try:
                await site.start()
            except OSError as exc:
                raise StartupFailure(f"cannot listen on {site.name}: {_reason(exc)}") from None
    except BaseException:
        # Stop what started (the writer, the database) in order; left to the event loop's
        # teardown, the writer's task would be cancelled and report a false crash.
        await runner.cleanup()
        raise
    port = settings.server.port
    server = getattr(sites[0], "_server", None)
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    return RunningServer(app=app, runner=runner, port=port)


def _reason(exc: OSError) -> str:
    """The system's words for an error ("Address already in use"), without the call's details."""
    if exc.errno == errno.EADDRINUSE:
        return f"{os.strerror(exc.errno)} (another server on this port? choose one with --port)"
    return os.strerror(exc.errno) if exc.errno else str(exc)


async def start_server(
    settings: Settings, *, reuse_port: bool = False, extra_plugins: Sequence[object] = ()
) -> RunningServer:
    running = await start_app(
        create_app(settings, extra_plugins=extra_plugins),
        reuse_port=reuse_port,
        demo=settings.server.demo,
    )
    print(f"qatysu serving on http://{settings.server.host}:{running.port}", flush=True)
    return running
