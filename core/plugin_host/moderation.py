"""Content moderation: what a moderation plugin may say about a citizen's text."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.plugin_host import keys as plugin_host_keys
from core.wire.errors import Unprocessable, field_error
from core.wire.i18n import Message

if TYPE_CHECKING:
    from aiohttp import web


class Verdict(enum.StrEnum):
    ALLOW = "allow"
    FLAG = "flag"
    REJECT = "reject"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModerationResult:
    verdict: Verdict
    reason: str = ""
    moderator: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TextSubmission:
    """One citizen text about to be stored: which channel, which field, and the text."""

    channel: str
    field: str
    text: str
    language: str | None = None


async def moderate_texts(
    request: web.Request, channel: str, texts: dict[str, str], language: str | None = None
) -> ModerationResult:
    """Ask moderation plugins about each citizen text; 422 naming the field when one is rejected.

    Returns the strongest verdict that is not a rejection (flag or allow), for the caller to store.
    """
    host = request.app[plugin_host_keys.PLUGINS]
    strongest = ModerationResult(verdict=Verdict.ALLOW)
    for field, text in texts.items():
        result = await host.moderate(
            TextSubmission(channel=channel, field=field, text=text, language=language), request.app
        )
        if result.verdict is Verdict.REJECT:
            reason = result.reason or "the text was rejected by moderation"
            raise Unprocessable(
                "{field}: {reason}",
                errors=[field_error(field, reason)],
                params={"field": field, "reason": Message(reason)},
            )
        if result.verdict is Verdict.FLAG:
            strongest = result
    return strongest
