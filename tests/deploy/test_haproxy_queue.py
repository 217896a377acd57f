"""The shipped proxy's queue: short, and signatures never behind reads."""

from __future__ import annotations

import re
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"
_UNITS = {"ms": 0.001, "s": 1.0, "": 0.001}  # HAProxy reads a bare number as milliseconds


def _directives() -> list[str]:
    lines = (line.partition("#")[0].strip() for line in CONFIG.read_text().splitlines())
    return [line for line in lines if line]


def test_requests_wait_for_an_instance_at_most_30_ms() -> None:
    (queue,) = [line for line in _directives() if line.startswith("timeout queue ")]
    found = re.fullmatch(r"timeout queue (\d+)(ms|s|)", queue)
    assert found is not None, queue
    assert int(found[1]) * _UNITS[found[2]] <= 0.030


def test_signatures_are_dequeued_before_reads() -> None:
    rules = [line for line in _directives() if line.startswith("http-request set-priority-class")]
    assert rules == [
        "http-request set-priority-class int(-10) if METH_POST { path_end /signatures }"
    ]
