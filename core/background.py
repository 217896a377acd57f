"""Background tasks that live as long as the app: started in a cleanup context, then cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

# What aiohttp's cleanup_ctx takes; plugins return these from ``qatysu_cleanup_ctx``.
CleanupContext = Callable[["web.Application"], AsyncIterator[None]]

log = logging.getLogger(__name__)


async def stop(*tasks: asyncio.Task[None]) -> None:
    """Cancel the tasks and wait until each has finished."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def periodic_ctx(
    name: str, interval: float, job: Callable[[web.Application], Awaitable[object]]
) -> CleanupContext:
    """A cleanup context that runs ``job(app)`` every ``interval`` seconds; a failing run is
    logged and the next one still happens."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await job(app)
                except Exception:
                    log.exception("background job %s failed; it runs again in %s s", name, interval)

        task = asyncio.create_task(loop(), name=name)
        yield
        await stop(task)

    return ctx
