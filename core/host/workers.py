"""``qatysu serve --workers N``: N processes under gunicorn, each serving like ``qatysu serve``.

The master prepares once (migrations, demo data), then forks. Each worker builds its own app
after the fork, so no event loop, connection or lock crosses a process boundary, and serves it
through the guarded site (``core.host.gunicorn_worker``). Metrics from every worker are aggregated
through prometheus_client's multiprocess mode; a worker's live gauges go when it exits.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornBaseLogger

from core.settings import Settings
from core.storage.database import async_url

log = logging.getLogger("qatysu")


class QatysuGunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        super().__init__()

    def load_config(self) -> None:
        from core.host.server import shutdown_budget

        server = self._settings.server
        options: dict[str, Any] = {
            "bind": f"{server.host}:{server.port}",
            "workers": server.workers,
            "worker_class": "core.host.gunicorn_worker.QatysuUVLoopWorker"
            if server.event_loop == "uvloop"
            else "core.host.gunicorn_worker.QatysuWorker",
            # The whole drain, the writer's flush included, before the master kills a worker.
            "graceful_timeout": math.ceil(shutdown_budget(self._settings)) + 1,
            "keepalive": math.ceil(server.keepalive_timeout),
            "backlog": server.listen_backlog,
            "child_exit": _child_exit,
            "accesslog": None,
            "logger_class": "core.host.workers.GunicornLogger",
            "loglevel": self._settings.logging.level,
            # One path per user by default: two servers on a machine would take it from each
            # other. Nothing in Qatysu uses it.
            "control_socket_disable": True,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from core.host.app import create_app

        return create_app(self._settings)


class GunicornLogger(GunicornBaseLogger):  # type: ignore[misc]
    """gunicorn's own lines (workers booting, exiting) through the root logger, so that they
    take its level and format, JSON included (``core.host.logs``)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        self.error_log.propagate = True


def _child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


async def _prepare(settings: Settings) -> None:
    """Run startup once in the master: migrations and, with --demo, the demo data and tokens."""
    from aiohttp import web

    from core.host.app import create_app
    from core.host.demo import print_demo

    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        if settings.server.demo:
            await print_demo(app)
    finally:
        await runner.cleanup()


def prepare_multiprocess_metrics(settings: Settings) -> None:
    """An empty directory for the workers' metric files: a previous run's would be summed in."""
    directory = Path(settings.server.data_dir) / "prometheus"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def serve_workers(settings: Settings) -> int:
    # prometheus_client picks file-backed values when it is first imported, so the directory
    # must be set before anything (the preparation included) imports it.
    prepare_multiprocess_metrics(settings)
    if async_url(settings.database_url).startswith("sqlite"):
        log.warning(
            "%d workers on SQLite: each commits its own batches and they take turns on the"
            " file's single write lock, so writes stay correct but do not scale with workers;"
            " for write throughput use PostgreSQL (--database-url postgresql://...)",
            settings.server.workers,
        )
    asyncio.run(_prepare(settings))
    QatysuGunicorn(settings).run()
    return 0
