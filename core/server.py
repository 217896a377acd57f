"""Starting the HTTP server and draining it: the lifecycle around ``create_app``."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from core import keys
from core.accesslog import AccessLogger
from core.app import create_app
from core.connections import GUARD, GuardedTCPSite
from core.demo import print_demo
from core.settings import Settings

log = logging.getLogger("qatysu")


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
        self.app[keys.READINESS].draining = True
        if settings.server.drain_grace > 0:
            await asyncio.sleep(settings.server.drain_grace)
        await self.runner.cleanup()


async def start_server(
    settings: Settings, *, reuse_port: bool = False, extra_plugins: Sequence[object] = ()
) -> RunningServer:
    app = create_app(settings, extra_plugins=extra_plugins)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=logging.getLogger("qatysu.access") if settings.server.access_log else None,
        access_log_class=AccessLogger,
        keepalive_timeout=settings.server.keepalive_timeout,
        # A citizen who closed the tab frees the handler at once instead of at its end.
        handler_cancellation=True,
        shutdown_timeout=settings.server.shutdown_timeout,
    )
    await runner.setup()
    if settings.server.demo:
        await print_demo(app)
    tune_garbage_collector()
    site = GuardedTCPSite(
        runner,
        app[GUARD],
        host=settings.server.host,
        port=settings.server.port,
        backlog=1024,
        reuse_port=reuse_port or None,
    )
    await site.start()
    port = settings.server.port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    print(f"qatysu serving on http://{settings.server.host}:{port}", flush=True)
    return RunningServer(app=app, runner=runner, port=port)
