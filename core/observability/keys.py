"""Observability's shared app state: the metrics and the port that serves them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from core.observability.metrics import Metrics

METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
METRICS_PORT: web.AppKey[int] = web.AppKey("metrics_port")
