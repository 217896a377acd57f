"""The event loop the load tools' own processes run on: uvloop, as the server does."""

from __future__ import annotations

import asyncio


def use_uvloop() -> bool:
    """Make uvloop the loop of ``asyncio.run`` from now on; False where uvloop is missing."""
    try:  # uvloop is a dependency everywhere but Windows
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
