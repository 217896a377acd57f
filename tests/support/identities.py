"""The test secrets, and bearer headers for each role (used in ``parametrize`` lists too)."""

from __future__ import annotations

from typing import Any

from core.identity.tokens import mint_token
from plugins.kazakhstan.iin import synthetic_iin

JWT_SECRET = "test-jwt-secret-that-is-long-enough-0123456789"
IIN_SECRET = "test-iin-secret-that-is-long-enough-0123456"


def token(role: str, sub: str, **claims: Any) -> str:
    return mint_token(JWT_SECRET.encode(), role=role, sub=sub, **claims)


def auth(bearer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer}"}


def citizen(n: int = 1, name: str = "Aigerim Sadykova") -> dict[str, str]:
    """Headers for the n-th synthetic citizen."""
    return auth(token("citizen", synthetic_iin(n), name=name))


def moderator() -> dict[str, str]:
    return auth(token("moderator", "moderator-1", name="Dana Moderator"))


def agency(code: str = "almaty-akimat") -> dict[str, str]:
    return auth(token("agency", f"official-{code}", agency=code, name="Official"))


def operator() -> dict[str, str]:
    return auth(token("operator", "operator-1"))
