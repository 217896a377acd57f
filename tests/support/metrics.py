"""Reading an app's Prometheus metrics as an operator's scrape would show them."""

from __future__ import annotations

from typing import Any

from core.observability import keys as observability_keys


def events_emitted(app: Any) -> dict[str, int]:
    """Domain events emitted so far, by name: the samples of ``qatysu_events_total``."""
    return {
        sample.labels["event"]: int(sample.value)
        for family in app[observability_keys.METRICS].registry.collect()
        if family.name == "qatysu_events"
        for sample in family.samples
        if sample.name == "qatysu_events_total"
    }
