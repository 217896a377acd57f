"""Extending a request's answer term: until when an agency may decide to, and how far.

The Administrative Procedural-Process Code, art. 76: the term may be extended up to
``total_months`` from filing in all, and the requester is told within ``notice_working_days``
of filing, so an extension is decided within them or not at all. Both figures, with their
source, are the channel's settings (``ExtensionRule``).

The notice period ends with its last working day (23:59:59 in the authority's time zone),
counted from the day after filing as every working-day term is. The longest term ends on the
same day of the month ``total_months`` after filing (the month's last day when it has no such
day), moved to the next working day when it is a day off, as terms in Kazakh law are.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from core.sdk import Conflict, add_months, first_working_day, invalid, iso
from plugins.information.lifecycle import OPEN, RequestStatus

if TYPE_CHECKING:
    from collections.abc import Mapping

    from core.sdk import WorkingDays
    from plugins.information.models import RequestExtension
    from plugins.information.settings import ExtensionRule


def check_extension(
    work: WorkingDays,
    rule: ExtensionRule,
    row: Mapping[Any, Any],
    body: RequestExtension,
    now: dt.datetime,
) -> None:
    """Refuse an extension the law does not allow: 409 for the request's state (closed,
    already extended, past the notice period), 422 for a new last day out of range."""
    status = RequestStatus(row["status"])
    if status not in OPEN:
        raise Conflict(
            "the request is {status}; this needs it to be one of: {allowed}",
            extra={"request_status": status.value},
            params={"status": status.value, "allowed": ", ".join(sorted(OPEN))},
        )
    if row["extended_at"] is not None:
        raise Conflict(
            "the answer term was already extended at {at}", params={"at": iso(row["extended_at"])}
        )
    filed_at, due_at = _stored(row["filed_at"]), _stored(row["due_at"])
    deadline = notice_ends(work, filed_at, rule)
    if now > deadline:
        raise Conflict(
            "the notice period for an extension ended at {at}", params={"at": iso(deadline)}
        )
    current = due_at.astimezone(work.timezone).date()
    if body.until <= current:
        raise invalid(
            "until", "must be after the term's current last day, {day}", day=current.isoformat()
        )
    latest = latest_day(work, filed_at, rule)
    if body.until > latest:
        raise invalid("until", "the term may be extended to {day} at most", day=latest.isoformat())


def notice_ends(work: WorkingDays, filed_at: dt.datetime, rule: ExtensionRule) -> dt.datetime:
    """The last moment an extension may be decided for a request filed at ``filed_at``."""
    return work.add_working_days(filed_at, rule.notice_working_days)


def latest_day(work: WorkingDays, filed_at: dt.datetime, rule: ExtensionRule) -> dt.date:
    """The last day a request filed at ``filed_at`` may be extended to."""
    filed = filed_at.astimezone(work.timezone).date()
    return first_working_day(work, add_months(filed, rule.total_months))


def _stored(value: dt.datetime) -> dt.datetime:
    """A stored time (NOT NULL) as aware UTC: SQLite returns them naive."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
