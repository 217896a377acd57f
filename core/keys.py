"""The app state every layer shares: the settings and the Redis client.

Each layer declares its own keys beside its code (``core/<layer>/keys.py``), so that a keys
module imports only the types of its own layer and below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from core.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
REDIS: web.AppKey[aioredis.Redis | None] = web.AppKey("redis")
