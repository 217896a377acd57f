"""The server's own identity provider: bearer JWTs verified with the configured keys.

Loaded by name like the built-in channels, so core never imports it. It runs last: an identity
provider plugin answers first, and a token no one else recognises is verified here (and refused
here when it does not verify). The verifier is the app's, built once from the settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.sdk import VERIFIER, hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from core.sdk import Identity


@hookimpl(trylast=True)
def qatysu_identify(request: web.Request, token: str) -> Identity:
    """Verify a bearer JWT with the server's keys."""
    return request.app[VERIFIER].verify(token)
