"""The petition lifecycle: statuses, who may see each, and the moves between them.

    moderation ─approve─▶ restricted ─co-signers─▶ public ─threshold─▶ awaiting_response
        │                     │                        │                        │
        └─reject─▶ rejected   └─term over─▶ expired ◀─term over┘      answer ─▶ answered

``restricted`` petitions collect their first co-signers and are reachable only by their link;
``public`` ones are listed. Deadlines (moderation, co-signers, collection, the answer) are kept
on the row; ``*_overdue`` flags are derived on every read, never stored.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    MODERATION = "moderation"
    REJECTED = "rejected"
    RESTRICTED = "restricted"
    PUBLIC = "public"
    AWAITING_RESPONSE = "awaiting_response"
    ANSWERED = "answered"
    EXPIRED = "expired"


SIGNABLE = frozenset({Status.RESTRICTED, Status.PUBLIC})
# Seen only by the author and moderators: an unmoderated or rejected text is not published.
PRIVATE = frozenset({Status.MODERATION, Status.REJECTED})
# Listed publicly; restricted petitions are deliberately absent (direct link only).
LISTED = frozenset({Status.PUBLIC, Status.AWAITING_RESPONSE, Status.ANSWERED, Status.EXPIRED})


def status_after_signatures(
    status: Status, count: int, *, co_signer_minimum: int, threshold: int
) -> Status:
    """Where a signable petition stands once it holds ``count`` signatures."""
    if status not in SIGNABLE:
        return status
    if count >= threshold:
        return Status.AWAITING_RESPONSE
    if count >= co_signer_minimum:
        return Status.PUBLIC
    return status
