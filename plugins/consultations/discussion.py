"""How long a draft's public discussion must last, by the kind of draft.

A draft of a by-law on public services (a standard or regulation of a service) is discussed
for at least ``public_service_discussion`` (10 working days, Law "On public services" art.
15(3)); any other draft for at least ``min_discussion_days`` calendar days (the Open NPA
rules). Both count from when the discussion opens, or from now when the opening is backdated,
and a working-day minimum ends at the same local time on its last working day, so that both
kinds measure whole days from the same moment.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.sdk import WorkingDays
    from plugins.consultations.settings import ConsultationSettings


class DraftKind(enum.StrEnum):
    REGULATORY = "regulatory"
    PUBLIC_SERVICE = "public_service"


@dataclass(frozen=True, slots=True)
class Minimum:
    """A kind's minimum discussion: how many days, counted how."""

    days: int
    unit: str  # "working" or "calendar"


def minimum(kind: DraftKind, settings: ConsultationSettings) -> Minimum:
    if kind is DraftKind.PUBLIC_SERVICE:
        term = settings.public_service_discussion
        return Minimum(days=term.days, unit=term.unit)
    return Minimum(days=settings.min_discussion_days, unit="calendar")


def earliest_close(
    kind: DraftKind, start: dt.datetime, settings: ConsultationSettings, work: WorkingDays
) -> dt.datetime:
    """The earliest moment a discussion of ``kind`` that starts at ``start`` may close."""
    rule = minimum(kind, settings)
    if rule.unit == "calendar" or rule.days == 0:
        return start + dt.timedelta(days=rule.days)
    local = start.astimezone(work.timezone)
    last_day = work.add_working_days(start, rule.days).astimezone(work.timezone).date()
    return dt.datetime.combine(last_day, local.time(), tzinfo=work.timezone).astimezone(dt.UTC)
