"""The ``Server`` header: the product's name, never its version or its libraries' versions.

aiohttp would send ``Python/3.11 aiohttp/3.x``, which tells a scanner which advisories to try.
The ordinary path and the fast lane send the same constant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

SERVER_NAME = "Qatysu"


async def name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """Replace aiohttp's default ``Server`` value (set just before this signal runs)."""
    response.headers["Server"] = SERVER_NAME
