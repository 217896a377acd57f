"""Domain events that plugins observe, e.g. a petition reaching its threshold."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened and is committed; ``name`` is dotted: ``petition.answered``."""

    name: str
    subject_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    occurred_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
