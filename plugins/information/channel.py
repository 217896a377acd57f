"""What every handler of the information channel shares: settings, calendar, events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from core.workdays import WorkCalendar
    from plugins.information.settings import InformationSettings


@dataclass(frozen=True, slots=True)
class InformationChannel:
    settings: InformationSettings
    calendar: WorkCalendar

    def page_size(self, asked: int | None) -> int:
        return min(asked or self.settings.default_page_size, self.settings.max_page_size)


CHANNEL: web.AppKey[InformationChannel] = web.AppKey("information.channel")
