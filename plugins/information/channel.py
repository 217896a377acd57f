"""What every handler of the information channel shares: settings, calendar, events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from core import keys
from core.events import Event

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


def emit(request: web.Request, name: str, subject_id: str, payload: dict[str, Any]) -> None:
    """Announce a committed change to event plugins; call only once the write has committed."""
    request.app[keys.METRICS].events_emitted.labels(name).inc()
    request.app[keys.EVENTS].emit(Event(name=name, subject_id=subject_id, payload=payload))
