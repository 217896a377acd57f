"""Content moderation: what a moderation plugin may say about a citizen's text."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
