"""Admission's shared app state: one app's limiter, controller and edge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from core.admission.state import Admission

ADMISSION: web.AppKey[Admission] = web.AppKey("admission")
