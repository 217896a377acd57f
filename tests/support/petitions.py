"""The petitions base path, a petition, small thresholds, and the statutory deadline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from core.plugin_host.events import Event
from core.plugin_host.hookspecs import hookimpl

BASE = "/api/v1/petitions"

PETITION = {
    "title": "Light the footpath along the river",
    "text": "The footpath between the two bridges has no lighting and is unsafe after dark. "
    "Please fund lighting.",
    "addressee": "almaty-bostandyq-akimat",
}

# Small figures so a test can walk the whole lifecycle with a handful of signers.
CO_SIGNER_MINIMUM = 3
THRESHOLD = 5


def fixed_thresholds(signatures: int) -> dict[str, dict[str, Any]]:
    """Every level's threshold fixed at ``signatures``, so that a test needs few signers."""
    return {
        level: {"signatures": signatures, "source": "a test figure"}
        for level in ("republic", "region", "city", "district")
    }


def thresholds(signatures: int) -> dict[str, Any]:
    """The jurisdiction's settings with every level's threshold fixed at ``signatures``."""
    return {"thresholds": fixed_thresholds(signatures)}


# The petition channel's small figures, and the jurisdiction's small thresholds to go with them.
SMALL_FIGURES: dict[str, Any] = {"co_signer_minimum": CO_SIGNER_MINIMUM}
SMALL_THRESHOLDS = thresholds(THRESHOLD)

ALMATY = ZoneInfo("Asia/Almaty")


def petition_url(petition_id: str, suffix: str = "") -> str:
    return f"{BASE}/{petition_id}{suffix}"


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def statutory_deadline(
    start: dt.datetime, working_days: int, holidays: Iterable[dt.date] = ()
) -> dt.datetime:
    """The end of the n-th working day after ``start``'s date in Almaty (weekends Sat and Sun)."""
    days_off = set(holidays)
    day = start.astimezone(ALMATY).date()
    counted = 0
    while counted < working_days:
        day += dt.timedelta(days=1)
        if day.weekday() < 5 and day not in days_off:
            counted += 1
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=ALMATY).astimezone(dt.UTC)


class EventRecorder:
    """A third-party plugin that records every domain event it is handed."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def qatysu_event(self, event: Event, app: Any) -> None:
        """Record the event."""
        self.events.append(event)

    def named(self, name: str) -> list[Event]:
        return [event for event in self.events if event.name == name]
