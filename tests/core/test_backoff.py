"""Back-off from a failing backend: one try per interval, an outage logged at its start and end."""

from __future__ import annotations

import logging

import pytest

from core.backoff import Backoff
from tests.support.admission import FakeClock


def test_after_a_failure_the_backend_is_left_alone_for_the_interval_then_tried_again() -> None:
    clock = FakeClock()
    backoff = Backoff("Redis", "tests", retry_interval=1.0, clock=clock)
    assert not backoff.waiting
    backoff.failed(ConnectionError("refused"))
    assert backoff.waiting
    clock.advance(0.999)
    assert backoff.waiting
    clock.advance(0.001)
    assert not backoff.waiting


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="core.backoff")
    clock = FakeClock()
    backoff = Backoff("Redis", "tests", retry_interval=1.0, clock=clock)
    for _ in range(5):
        backoff.failed(ConnectionError("refused"))
        clock.advance(1.0)
    backoff.succeeded()
    backoff.succeeded()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "Redis unavailable for tests (refused); using the fallback, and trying again every 1 s",
        ),
        ("INFO", "Redis answers again for tests"),
    ]
