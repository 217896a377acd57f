"""What the consultation channel keeps per app: its validated settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from plugins.consultations.settings import ConsultationSettings


@dataclass(frozen=True, slots=True)
class ConsultationState:
    settings: ConsultationSettings

    @classmethod
    def build(cls, settings: ConsultationSettings, app: web.Application) -> ConsultationState:
        return cls(settings=settings)


STATE: web.AppKey[ConsultationState] = web.AppKey("consultations.state")
