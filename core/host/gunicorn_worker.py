"""The gunicorn worker of ``qatysu serve --workers N``.

aiohttp's stock worker serves through ``web.SockSite``, which would bypass the connection guard.
This one serves through ``core.host.server.start_app``, like single-process ``qatysu serve``, so
each worker has the connection cap, the head timeout, edge shedding and the same drain. On SIGTERM
it drains as a single process does: readiness off, in-flight requests finish, the writer flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

from aiohttp import web
from aiohttp.worker import GunicornWebWorker

log = logging.getLogger("qatysu")

HEARTBEAT_SECONDS = 1.0


class QatysuWorker(GunicornWebWorker):
    """Serves the app built by ``QatysuGunicorn.load`` through the guarded site."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stopping: asyncio.Event | None = None

    def run(self) -> None:
        # The arbiter tells a failed boot from a clean exit by ``booted``; it turns true once the
        # sockets are served.
        self.booted = False
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
        sys.exit(self.exit_code)

    async def _serve(self) -> None:
        from core.host.server import start_app

        app = self.wsgi
        if not isinstance(app, web.Application):
            raise RuntimeError(f"the gunicorn application must load a web.Application: {app!r}")
        self._stopping = asyncio.Event()
        # The site's server owns and closes what it is given; gunicorn closes its own sockets.
        running = await start_app(app, sockets=[sock.dup() for sock in self.sockets])
        self.booted = True
        try:
            while self.alive:
                self.notify()
                if self.ppid != os.getppid():
                    log.info("the gunicorn master has gone; worker %s drains", os.getpid())
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HEARTBEAT_SECONDS):
                        await self._stopping.wait()
        finally:
            await running.drain()

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.alive = False
        self._wake()

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.alive = False
        self.cfg.worker_int(self)
        self._wake()

    def _wake(self) -> None:
        if self._stopping is not None:
            self._stopping.set()


class QatysuUVLoopWorker(QatysuWorker):
    """``QatysuWorker`` on uvloop."""

    def init_process(self) -> None:
        import uvloop

        with contextlib.suppress(RuntimeError):
            asyncio.get_event_loop().close()
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        super().init_process()
