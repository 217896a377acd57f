"""The storage layer's shared app state: the database and its group-commit writer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from core.storage.database import Database
    from core.storage.writer import Writer

DATABASE: web.AppKey[Database] = web.AppKey("database")
WRITER: web.AppKey[Writer] = web.AppKey("writer")
