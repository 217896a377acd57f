"""The life of an access-to-information request.

    registered ─progress─▶ in_progress ─answer─▶ answered
        │                        └────refusal─▶ refused
        └──answer / refusal (straight away)──▶ answered | refused

``overdue`` is never stored: a request is overdue while it is still open (registered or in
progress) and its statutory due date has passed, computed on every read. An agency may extend
the term of an open request once (``extension``, ``plugins.information.extensions``): the due
date moves, and overdue follows it.
"""

from __future__ import annotations

import enum


class RequestStatus(enum.StrEnum):
    REGISTERED = "registered"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    REFUSED = "refused"


OPEN = frozenset({RequestStatus.REGISTERED, RequestStatus.IN_PROGRESS})
