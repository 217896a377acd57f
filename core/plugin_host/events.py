"""Domain events that plugins observe, e.g. a petition reaching its threshold."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.plugin_host import keys as plugin_host_keys

if TYPE_CHECKING:
    from aiohttp import web


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened and is committed; ``name`` is dotted: ``petition.answered``."""

    name: str
    subject_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    occurred_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def emit_event(
    request: web.Request, name: str, subject_id: str, payload: dict[str, Any] | None = None
) -> None:
    """Announce a committed change to event plugins; call only once the write has committed."""
    request.app[plugin_host_keys.EVENTS].emit(
        Event(name=name, subject_id=subject_id, payload=payload or {})
    )
