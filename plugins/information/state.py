"""What the information channel keeps per app: its settings and the working-day calendar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from core.sdk import JURISDICTION

if TYPE_CHECKING:
    from core.sdk import WorkingDays
    from plugins.information.settings import InformationSettings


@dataclass(frozen=True, slots=True)
class InformationState:
    settings: InformationSettings
    calendar: WorkingDays

    @classmethod
    def build(cls, settings: InformationSettings, app: web.Application) -> InformationState:
        return cls(settings=settings, calendar=app[JURISDICTION])


STATE: web.AppKey[InformationState] = web.AppKey("information.state")
