"""An example moderation plugin: reject or flag citizen texts that match configured regexes.

Enabled only by config, ``[plugins] enabled = ["plugins.pattern_moderation"]``, with::

    [pattern_moderation]
    reject_patterns = ["\\bbuy now\\b"]
    flag_patterns = ["https?://"]

    [pattern_moderation.subject_patterns]   # petition subjects the law excludes, by reason code
    referendums = ["референдум", "referendum"]

Patterns are case-insensitive and compiled once; an invalid one stops the server at start with
a message naming the setting. A petition text that matches a subject pattern is flagged, not
rejected, with the subject's code: moderators decide, and cite that code when they reject.

Each app (a test makes many in one process) has its own settings, so nothing is global: at
start-up the plugin compiles that app's patterns into a ``PatternModerator`` kept in the app,
and the moderation hook, which receives the app, asks it.
"""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.sdk import PLUGINS, ModerationResult, TextSubmission, Verdict, hookimpl

SECTION = "pattern_moderation"
NAME = "pattern_moderation"


class PatternModerationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reject_patterns: tuple[str, ...] = ()
    flag_patterns: tuple[str, ...] = ()
    # A rejection reason code (see plugins/petitions/reasons.py) -> patterns of its subject.
    subject_patterns: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    reject_reason: str = Field(
        default="the text contains content that is not allowed", min_length=1
    )

    @field_validator("reject_patterns", "flag_patterns")
    @classmethod
    def _valid_regexes(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        _check_regexes(patterns)
        return patterns

    @field_validator("subject_patterns")
    @classmethod
    def _valid_subject_regexes(
        cls, subjects: dict[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        for code, patterns in subjects.items():
            try:
                _check_regexes(patterns)
            except ValueError as exc:
                raise ValueError(f"{code}: {exc}") from None
        return subjects


def _check_regexes(patterns: tuple[str, ...]) -> None:
    for pattern in patterns:
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None


class PatternModerator:
    """One app's compiled patterns."""

    def __init__(self, settings: PatternModerationSettings) -> None:
        self._reject = [re.compile(p, re.IGNORECASE) for p in settings.reject_patterns]
        self._flag = [re.compile(p, re.IGNORECASE) for p in settings.flag_patterns]
        self._subjects = {
            code: [re.compile(p, re.IGNORECASE) for p in patterns]
            for code, patterns in settings.subject_patterns.items()
        }
        self._reject_reason = settings.reject_reason

    def judge(self, submission: TextSubmission) -> ModerationResult:
        """Reject on a reject pattern, else flag a petition on a subject or a flag pattern."""
        if any(p.search(submission.text) for p in self._reject):
            return ModerationResult(
                verdict=Verdict.REJECT, reason=self._reject_reason, moderator=NAME
            )
        if submission.channel == "petitions":
            for code, patterns in self._subjects.items():
                if any(p.search(submission.text) for p in patterns):
                    return ModerationResult(
                        verdict=Verdict.FLAG, reason=f"subject: {code}", moderator=NAME
                    )
        if any(p.search(submission.text) for p in self._flag):
            return ModerationResult(
                verdict=Verdict.FLAG, reason="the text matches a flag pattern", moderator=NAME
            )
        return ModerationResult(verdict=Verdict.ALLOW, moderator=NAME)


MODERATOR: web.AppKey[PatternModerator] = web.AppKey("pattern_moderation.moderator")


@hookimpl
def qatysu_settings_section() -> tuple[str, type[BaseModel]]:
    """The [pattern_moderation] section: reject and flag regexes."""
    return SECTION, PatternModerationSettings


@hookimpl
def qatysu_startup(app: web.Application) -> None:
    """Compile this app's patterns once."""
    app[MODERATOR] = PatternModerator(app[PLUGINS].settings_of(SECTION, PatternModerationSettings))


@hookimpl
def qatysu_moderate_text(submission: TextSubmission, app: web.Application) -> ModerationResult:
    """Judge the text with this app's patterns."""
    return app[MODERATOR].judge(submission)
