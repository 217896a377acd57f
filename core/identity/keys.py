"""Identity's shared state: the app's token verifier and jurisdiction, and each request's caller."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from core.identity.identities import Identity
    from core.identity.jurisdiction import Jurisdiction
    from core.identity.tokens import TokenVerifier

VERIFIER: web.AppKey[TokenVerifier] = web.AppKey("verifier")
JURISDICTION: web.AppKey[Jurisdiction] = web.AppKey("jurisdiction")

IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("identity")
