"""The consultations base path, a draft, and an opening window."""

from __future__ import annotations

import datetime as dt

BASE = "/api/v1/consultations"

DRAFT = {
    "title": "Draft Rules for enrolment in schools",
    "summary": "One online queue for school places.",
    "sections": [
        {"heading": "General provisions", "text": "These Rules set how parents apply."},
        {"heading": "Applications", "text": "An application is filed online."},
        {"text": "Places are offered in the order applications were filed."},
    ],
}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def window(
    *, opens_in: dt.timedelta = dt.timedelta(minutes=-1), days: float = 14
) -> dict[str, str]:
    opens_at = now() + opens_in
    return {
        "opens_at": opens_at.isoformat(),
        "closes_at": (opens_at + dt.timedelta(days=days)).isoformat(),
    }
