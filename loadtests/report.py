"""Markdown for the benchmark's reports, and the units their figures are given in."""

from __future__ import annotations

from collections.abc import Callable, Sequence

# Where a benchmark writes its report, a line at a time.
Out = Callable[[str], None]


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds to a tenth; None (not measured) stays None."""
    return None if seconds is None else round(seconds * 1000, 1)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; numbers right-aligned, None shown as '-'."""

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.1f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value).replace("|", "\\|")

    def is_number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    numeric = [
        bool(rows) and all(is_number(row[i]) or row[i] is None for row in rows)
        for i in range(len(headers))
    ]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if right else "---" for right in numeric) + "|",
    ]
    lines.extend("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)
    return "\n".join(lines)
