"""Bearer-token identity: verification, roles, and the keyed hash that stands in for an IIN.

A citizen's ``sub`` claim is an IIN. It is checked (control digit included) and at once replaced
by its keyed hash: ``Identity.subject`` never holds the raw number, so nothing downstream (storage,
logs, metrics, rate-limit keys) can leak it.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from core.errors import Forbidden, Unauthorized
from core.hookspecs import hookimpl
from core.hs256 import TokenRejected, token_header, verify_hs256
from core.iin import iin_hash, iin_problem

if TYPE_CHECKING:
    from aiohttp import web


class Role(enum.StrEnum):
    CITIZEN = "citizen"
    AGENCY = "agency"
    MODERATOR = "moderator"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling. For citizens ``subject`` is the keyed hash of the IIN, never the IIN."""

    subject: str
    role: Role
    agency: str | None = None
    name: str | None = None

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


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenKeys:
    """What verifies and signs tokens."""

    hs256_secret: bytes
    iin_secret: bytes
    public_key: str | None = None
    algorithms: tuple[str, ...] = ("HS256",)
    leeway: float = 30.0


class TokenVerifier:
    """Verifies bearer JWTs and turns their claims into an Identity."""

    def __init__(self, keys: TokenKeys) -> None:
        self._keys = keys
        self._hs_algorithms = [a for a in keys.algorithms if a.startswith("HS")]
        self._pk_algorithms = [a for a in keys.algorithms if not a.startswith("HS")]

    def citizen_hash(self, iin: str) -> str:
        """The keyed hash that stands for this IIN everywhere the server keeps it."""
        return iin_hash(iin, self._keys.iin_secret)

    def verify(self, token: str) -> Identity:
        claims = self._decode(token)
        role_claim = claims.get("role")
        try:
            role = Role(str(role_claim))
        except ValueError:
            raise Unauthorized(
                f"the token's role claim {role_claim!r} is not a known role"
            ) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("the token has no subject")
        agency = claims.get("agency")
        if role is Role.AGENCY and (not isinstance(agency, str) or not agency):
            raise Unauthorized("an agency token must carry an agency claim")
        name = claims.get("name")
        if role is Role.CITIZEN:
            problem = iin_problem(subject)
            if problem is not None:
                raise Unauthorized(f"the token's subject is not a valid IIN: {problem}")
            subject = iin_hash(subject, self._keys.iin_secret)
        return Identity(
            subject=subject,
            role=role,
            agency=agency if isinstance(agency, str) else None,
            name=name if isinstance(name, str) else None,
        )

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = token_header(token)
        except TokenRejected as exc:
            raise Unauthorized(str(exc)) from None
        algorithm = header.get("alg")
        if algorithm == "HS256" and algorithm in self._hs_algorithms:
            try:
                claims = verify_hs256(
                    token, self._keys.hs256_secret, now=time.time(), leeway=self._keys.leeway
                )
            except TokenRejected as exc:
                raise Unauthorized(str(exc)) from None
        elif algorithm in self._pk_algorithms and self._keys.public_key:
            claims = self._decode_public_key(token, algorithm, self._keys.public_key)
        else:
            raise Unauthorized(f"tokens signed with {algorithm!r} are not accepted")
        for claim in ("sub", "role"):
            if claim not in claims:
                raise Unauthorized(f"the token has no {claim} claim")
        return claims

    def _decode_public_key(self, token: str, algorithm: str, key: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                leeway=self._keys.leeway,
                options={"require": ["exp", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from None
        return claims


def mint_token(
    secret: bytes,
    *,
    role: str,
    sub: str,
    agency: str | None = None,
    name: str | None = None,
    ttl: float = 3600,
) -> str:
    """An HS256 token as the server expects it: for the CLI, demos and load tests."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + int(ttl)}
    if agency is not None:
        claims["agency"] = agency
    if name is not None:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def ensure_role(identity: Identity | None, roles: frozenset[Role]) -> Identity:
    """The identity when its role is allowed; 401 without one, 403 with the wrong role."""
    if identity is None:
        raise Unauthorized("this route needs a bearer token")
    if identity.role not in roles:
        allowed = ", ".join(sorted(roles))
        raise Forbidden(f"this route is for {allowed}; the token's role is {identity.role}")
    return identity


class BearerTokenProvider:
    """Core's own identity provider: JWTs verified with the configured keys. Others run first."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    @hookimpl(trylast=True)
    def qatysu_identify(self, request: web.Request, token: str) -> Identity:
        """Verify a bearer JWT with the server's keys."""
        return self._verifier.verify(token)
