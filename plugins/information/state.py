"""What the information channel keeps per app: its settings and the working-day calendar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from core.sdk import CALENDAR

if TYPE_CHECKING:
    from core.sdk import WorkCalendar
    from plugins.information.settings import InformationSettings


@dataclass(frozen=True, slots=True)
class InformationState:
    settings: InformationSettings
    calendar: WorkCalendar

    @classmethod
    def build(cls, settings: InformationSettings, app: web.Application) -> InformationState:
        return cls(settings=settings, calendar=app[CALENDAR])


STATE: web.AppKey[InformationState] = web.AppKey("information.state")
