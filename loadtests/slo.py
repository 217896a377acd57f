"""The SLO gate of a Locust run: outcomes per route class, thresholds from one file, a verdict.

Each answer is one of three outcomes. *ok*: a status the scenario expected. *protective*: a 429
or 503 that carries ``Retry-After``, the server refusing work to protect itself, counted apart
and not as an error. *error*: anything else, including a connection error (status 0).

A :class:`Ledger` counts outcomes and keeps a latency histogram per route class; ledgers merge,
so Locust workers send theirs to the master, which judges the whole run. The verdict is printed
(:func:`render`), written as JSON beside Locust's CSV (:func:`verdict_document`), and put at the
top of its HTML report (:func:`with_verdict_section`). This module knows nothing of Locust, so
it can be tested and reused on its own.
"""

from __future__ import annotations

import html
import json
import math
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["ok", "protective", "error"]
PROTECTIVE_STATUSES = frozenset({429, 503})
DEFAULT_THRESHOLDS_FILE = Path(__file__).with_name("slo.toml")


def classify(status: int, *, retry_after: bool, expected: Iterable[int]) -> Outcome:
    if status in expected:
        return "ok"
    if status in PROTECTIVE_STATUSES and retry_after:
        return "protective"
    return "error"


def latency_bucket(milliseconds: float) -> int:
    """Milliseconds rounded to two significant figures above 100, as Locust rounds its own."""
    value = max(0, round(milliseconds))
    if value < 100:
        return value
    step = int(10 ** (len(str(value)) - 2))
    return round(value / step) * step


class ThresholdsError(ValueError):
    """The thresholds file is missing, unreadable or names an unknown key; the message says."""


@dataclass(frozen=True, kw_only=True)
class Threshold:
    p95_ms: float
    p99_ms: float
    max_error_ratio: float
    max_protective_ratio: float


def load_thresholds(path: Path) -> dict[str, Threshold]:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ThresholdsError(f"SLO thresholds {path}: {error}") from None
    keys = set(Threshold.__dataclass_fields__)
    thresholds: dict[str, Threshold] = {}
    for route_class, values in raw.items():
        if not isinstance(values, dict) or set(values) != keys:
            raise ThresholdsError(
                f"SLO thresholds {path}: [{route_class}] needs exactly {', '.join(sorted(keys))}"
            )
        if not all(isinstance(v, int | float) and v >= 0 for v in values.values()):
            raise ThresholdsError(f"SLO thresholds {path}: [{route_class}] values are numbers >= 0")
        thresholds[route_class] = Threshold(**{k: float(v) for k, v in values.items()})
    if not thresholds:
        raise ThresholdsError(f"SLO thresholds {path}: no route class is defined")
    return thresholds


@dataclass
class ClassTally:
    """One route class: outcome counts and the latency histogram of non-protective answers."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: Counter[int] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(self.outcomes.values())

    def percentile(self, fraction: float) -> float | None:
        """Nearest rank over the histogram; None when nothing was answered."""
        total = sum(self.latencies.values())
        if total == 0:
            return None
        rank = max(1, math.ceil(fraction * total))
        seen = 0
        for bucket in sorted(self.latencies):
            seen += self.latencies[bucket]
            if seen >= rank:
                return float(bucket)
        raise AssertionError("unreachable: the ranks add up to the total")


class Ledger:
    """Outcomes per route class and requests per channel, mergeable across processes."""

    def __init__(self) -> None:
        self.classes: dict[str, ClassTally] = {}
        self.channels: Counter[str] = Counter()

    def record(self, route_class: str, channel: str, milliseconds: float, outcome: Outcome) -> None:
        tally = self.classes.setdefault(route_class, ClassTally())
        tally.outcomes[outcome] += 1
        if outcome != "protective":
            tally.latencies[latency_bucket(milliseconds)] += 1
        self.channels[channel] += 1

    @property
    def count(self) -> int:
        return sum(tally.count for tally in self.classes.values())

    def snapshot(self) -> dict[str, Any]:
        """A plain-data copy (lists and string keys) that Locust can send to its master."""
        return {
            "classes": {
                name: {
                    "outcomes": dict(tally.outcomes),
                    "latencies": [[bucket, n] for bucket, n in tally.latencies.items()],
                }
                for name, tally in self.classes.items()
            },
            "channels": dict(self.channels),
        }

    def drain(self) -> dict[str, Any]:
        """The snapshot, after which this ledger starts again from zero (for periodic reports)."""
        data = self.snapshot()
        self.classes.clear()
        self.channels.clear()
        return data

    def merge(self, data: Mapping[str, Any]) -> None:
        for name, tally_data in data.get("classes", {}).items():
            tally = self.classes.setdefault(name, ClassTally())
            tally.outcomes.update(tally_data["outcomes"])
            for bucket, n in tally_data["latencies"]:
                tally.latencies[int(bucket)] += int(n)
        self.channels.update(data.get("channels", {}))


@dataclass(frozen=True)
class Row:
    route_class: str
    count: int
    p95: float | None
    p99: float | None
    errors: int
    protective: int
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def judge(ledger: Ledger, thresholds: Mapping[str, Threshold]) -> list[Row]:
    """One row per route class with a threshold or with requests; the reasons each one fails."""
    rows = []
    for name in sorted(set(thresholds) | set(ledger.classes)):
        tally = ledger.classes.get(name, ClassTally())
        count = tally.count
        p95, p99 = tally.percentile(0.95), tally.percentile(0.99)
        errors, protective = tally.outcomes["error"], tally.outcomes["protective"]
        failures: list[str] = []
        limit = thresholds.get(name)
        if limit is None:
            failures.append("no threshold for this route class")
        elif count:
            if p95 is not None and p95 > limit.p95_ms:
                failures.append(f"p95 {p95:g} ms > {limit.p95_ms:g}")
            if p99 is not None and p99 > limit.p99_ms:
                failures.append(f"p99 {p99:g} ms > {limit.p99_ms:g}")
            if errors / count > limit.max_error_ratio:
                failures.append(f"errors {errors / count:.1%} > {limit.max_error_ratio:.1%}")
            if protective / count > limit.max_protective_ratio:
                failures.append(
                    f"protective {protective / count:.1%} > {limit.max_protective_ratio:.1%}"
                )
        rows.append(Row(name, count, p95, p99, errors, protective, tuple(failures)))
    return rows


def verdict(ledger: Ledger, rows: Iterable[Row]) -> bool:
    """The run passes when it made requests and every route class met its objectives."""
    return ledger.count > 0 and all(row.passed for row in rows)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _share(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.1%})" if whole else str(part)


def render(ledger: Ledger, rows: list[Row]) -> str:
    header = ("route class", "count", "p95 ms", "p99 ms", "errors", "protective", "result")
    table = [header]
    for row in rows:
        result = "pass" if row.passed else "FAIL: " + "; ".join(row.failures)
        if not row.count and row.passed:
            result = "pass (no requests)"
        table.append(
            (
                row.route_class,
                str(row.count),
                _ms(row.p95),
                _ms(row.p99),
                _share(row.errors, row.count),
                _share(row.protective, row.count),
                result,
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = ["SLO gate (protective = 429/503 with Retry-After, not counted as errors)"]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, line[-1]]))
    channels = ", ".join(f"{name} {n}" for name, n in sorted(ledger.channels.items()))
    lines.append(f"requests by channel: {channels or 'none'}")
    passed = verdict(ledger, rows)
    lines.append(f"SLO gate: {'PASS' if passed else 'FAIL'} ({ledger.count} requests)")
    return "\n".join(lines)


def verdict_document(
    ledger: Ledger, rows: Iterable[Row], thresholds: Mapping[str, Threshold]
) -> dict[str, Any]:
    """The verdict as plain data, for ``<csv prefix>_slo.json``: each class, its measured
    figures, its thresholds and the reasons it failed."""
    rows = list(rows)
    classes = {}
    for row in rows:
        limit = thresholds.get(row.route_class)
        classes[row.route_class] = {
            "passed": row.passed,
            "count": row.count,
            "p95_ms": row.p95,
            "p99_ms": row.p99,
            "errors": row.errors,
            "protective": row.protective,
            "failures": list(row.failures),
            "thresholds": None if limit is None else dict(limit.__dict__),
        }
    return {
        "passed": verdict(ledger, rows),
        "requests": ledger.count,
        "channels": dict(sorted(ledger.channels.items())),
        "classes": classes,
    }


_BODY_TAG = re.compile(r"<body[^>]*>", flags=re.IGNORECASE)


def with_verdict_section(
    report: str, ledger: Ledger, rows: list[Row], thresholds: Mapping[str, Threshold]
) -> str:
    """Locust's HTML report with the gate's table first in its body (or at its end when it has
    no body tag), and the verdict as JSON in ``<script id="qatysu-slo">``."""
    passed = verdict(ledger, rows)
    document = json.dumps(verdict_document(ledger, rows, thresholds), sort_keys=True)
    # No "<" at all inside the script element ("</script" or "<!--" would end or break it);
    # JSON reads the escape back as the same character.
    embedded = document.replace("<", "\\u003c")
    colour = "#1b5e20" if passed else "#b71c1c"
    section = (
        '<section id="qatysu-slo-gate" style="font-family: monospace; padding: 1em; '
        f'border-left: 0.5em solid {colour}; margin: 1em;">'
        f'<h2 style="color: {colour}; margin-top: 0;">SLO gate: {"PASS" if passed else "FAIL"}'
        "</h2>"
        f"<pre>{html.escape(render(ledger, rows))}</pre>"
        f'<script type="application/json" id="qatysu-slo">{embedded}</script></section>'
    )
    body = _BODY_TAG.search(report)
    if body is None:
        return report + section
    return report[: body.end()] + section + report[body.end() :]
