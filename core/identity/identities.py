"""Who is calling: a role, and an identity as every identity provider hands it to core."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    CITIZEN = "citizen"
    AGENCY = "agency"
    MODERATOR = "moderator"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling. For citizens ``subject`` is the keyed hash of the national identifier,
    never the identifier itself."""

    subject: str
    role: Role
    agency: str | None = None
    name: str | None = None
    # The region the identity provider vouches for (its configured claim), unvalidated here.
    region: str | None = None

    @property
    def public_name(self) -> str:
        """First name and the initial of the last, as the public may see a signer."""
        return public_name(self.name)


def public_name(full_name: str | None) -> str:
    parts = (full_name or "").split()
    if not parts:
        return "Anonymous"
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0]} {parts[-1][0]}."
