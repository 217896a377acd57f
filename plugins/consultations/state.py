"""What the consultation channel keeps per app: its validated settings and the working-day
calendar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from core.sdk import JURISDICTION

if TYPE_CHECKING:
    from core.sdk import WorkingDays
    from plugins.consultations.settings import ConsultationSettings


@dataclass(frozen=True, slots=True)
class ConsultationState:
    settings: ConsultationSettings
    calendar: WorkingDays

    @classmethod
    def build(cls, settings: ConsultationSettings, app: web.Application) -> ConsultationState:
        return cls(settings=settings, calendar=app[JURISDICTION])


STATE: web.AppKey[ConsultationState] = web.AppKey("consultations.state")
