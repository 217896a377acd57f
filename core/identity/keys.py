"""Identity's shared state: the app's token verifier and each request's caller."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from core.identity.tokens import Identity, TokenVerifier

VERIFIER: web.AppKey[TokenVerifier] = web.AppKey("verifier")

IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("identity")
