"""Bearer-token identity: verification, roles, and the keyed hash that stands in for a national
identifier.

A citizen's ``sub`` claim is a national identifier. It is checked by the jurisdiction's rule
(``Jurisdiction.national_id_problem``: for Kazakhstan, the IIN and its control digit) and at
once replaced by its keyed hash. An official's ``sub`` is kept as it is, unless it
resembles a national identifier (a national identity provider may use it as ``sub`` for
everyone): then it is hashed too. So ``Identity.subject`` never holds a raw national identifier,
and nothing downstream (storage, event payloads, logs, metrics, rate-limit keys) can leak one.

Every token, whatever signed it, must carry numeric ``iat`` and ``exp`` no further apart than
its role's maximum lifetime (``identity.max_token_lifetime_seconds``;
``core.identity.hs256.check_times`` is the one rule). Tokens from an identity provider (RS256,
ES256) must also carry the configured ``iss`` and ``aud`` and a ``typ`` header of an accepted
type. The public key is parsed once, when the verifier is built.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from core.identity.hs256 import (
    TokenRejected,
    check_times,
    segments_header,
    token_segments,
    verify_hs256_segments,
)
from core.identity.identities import Identity, Role
from core.identity.national_id import national_id_hash
from core.identity.secret_keys import resolve_secrets
from core.settings import SettingsError, TokenLifetimes
from core.wire.errors import Forbidden, Unauthorized
from core.wire.i18n import Message

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aiohttp import web

    from core.identity.jurisdiction import Jurisdiction
    from core.settings import Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenKeys:
    """What verifies and signs tokens."""

    hs256_secret: bytes
    national_id_secret: bytes
    public_key: str | None = None
    algorithms: tuple[str, ...] = ("HS256",)
    leeway: float = 30.0
    # What an identity provider's token (RS256, ES256) must say about itself.
    issuer: str | None = None
    audience: str | None = None
    token_types: tuple[str, ...] = ("JWT", "at+jwt")
    # The claim naming the citizen's region, when the identity provider supplies one.
    region_claim: str | None = None
    # The longest exp - iat of each role's tokens, in seconds.
    lifetimes: Mapping[str, float] = field(default_factory=lambda: role_lifetimes(TokenLifetimes()))


def token_keys(settings: Settings) -> TokenKeys:
    """The configured keys: the secrets (development ones in development mode) and the
    identity provider's public key, read from its file; SettingsError names what is wrong."""
    identity = settings.identity
    server_secrets = resolve_secrets(settings)
    public_key = None
    if identity.jwt_public_key_file is not None:
        try:
            public_key = identity.jwt_public_key_file.read_text()
        except OSError as exc:
            raise SettingsError(f"identity.jwt_public_key_file: cannot read it: {exc}") from None
    return TokenKeys(
        hs256_secret=server_secrets.jwt_secret,
        national_id_secret=server_secrets.iin_hash_secret,
        public_key=public_key,
        algorithms=identity.algorithms,
        leeway=identity.leeway_seconds,
        issuer=identity.issuer,
        audience=identity.audience,
        token_types=identity.token_types,
        lifetimes=role_lifetimes(identity.max_token_lifetime_seconds),
        region_claim=identity.region_claim,
    )


def role_lifetimes(settings: TokenLifetimes) -> dict[str, float]:
    """The longest lifetime of each role's tokens, by the role's name."""
    return {role.value: getattr(settings, role.value) for role in Role}


PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
_KEY_TYPES: dict[str, type[PublicKey]] = {
    "RS256": rsa.RSAPublicKey,
    "ES256": ec.EllipticCurvePublicKey,
}


def load_public_key(pem: str, algorithms: tuple[str, ...]) -> PublicKey:
    """The PEM public key, parsed once; SettingsError when it does not fit the algorithms."""
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise SettingsError(f"identity.jwt_public_key_file: not a PEM public key: {exc}") from None
    for algorithm in algorithms:
        wanted = _KEY_TYPES.get(algorithm)
        if wanted is not None and not isinstance(key, wanted):
            raise SettingsError(
                f"identity.jwt_public_key_file: the key cannot verify {algorithm} tokens"
            )
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise SettingsError("identity.jwt_public_key_file: only RSA and EC keys are supported")
    return key


class TokenVerifier:
    """Verifies bearer JWTs and turns their claims into an Identity."""

    def __init__(self, keys: TokenKeys, jurisdiction: Jurisdiction) -> None:
        self._keys = keys
        self._jurisdiction = jurisdiction
        self._hs256 = "HS256" in keys.algorithms
        self._pk_algorithms = [a for a in keys.algorithms if not a.startswith("HS")]
        self._public_key = (
            load_public_key(keys.public_key, tuple(self._pk_algorithms))
            if keys.public_key and self._pk_algorithms
            else None
        )
        self._token_types = {_media_type(t) for t in keys.token_types}

    def citizen_hash(self, national_id: str) -> str:
        """The keyed hash that stands for this national identifier wherever the server keeps it."""
        return national_id_hash(national_id, self._keys.national_id_secret)

    def verify(self, token: str) -> Identity:
        claims = self._decode(token)
        role_claim = claims.get("role")
        try:
            role = Role(str(role_claim))
        except ValueError:
            raise Unauthorized(
                "the token's role claim {role} is not a known role",
                params={"role": repr(role_claim)},
            ) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("the token has no subject")
        agency = claims.get("agency")
        if role is Role.AGENCY and (not isinstance(agency, str) or not agency):
            raise Unauthorized("an agency token must carry an agency claim")
        name = claims.get("name")
        if role is Role.CITIZEN:
            problem = self._jurisdiction.national_id_problem(subject)
            if problem is not None:
                raise Unauthorized(
                    self._jurisdiction.national_id_refusal, params={"problem": Message(problem)}
                )
        if role is Role.CITIZEN or self._jurisdiction.resembles_national_id(subject):
            subject = national_id_hash(subject, self._keys.national_id_secret)
        return Identity(
            subject=subject,
            role=role,
            agency=agency if isinstance(agency, str) else None,
            name=name if isinstance(name, str) else None,
            region=self._region(claims),
        )

    def _region(self, claims: dict[str, Any]) -> str | None:
        """The region claim's value when one is configured and it is a short string."""
        if self._keys.region_claim is None:
            return None
        region = claims.get(self._keys.region_claim)
        return region if isinstance(region, str) and 0 < len(region) <= 64 else None

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            # The whole token's shape first, whatever the algorithm: nothing is decoded from a
            # token that is too long, not ASCII, or not three base64url segments.
            segments = token_segments(token)
            header = segments_header(segments)
            algorithm = header.get("alg")
            if algorithm == "HS256" and self._hs256:
                claims = verify_hs256_segments(
                    segments,
                    header,
                    self._keys.hs256_secret,
                    time.time(),
                    self._keys.leeway,
                    self._keys.lifetimes,
                )
            elif algorithm in self._pk_algorithms and self._public_key is not None:
                claims = self._decode_public_key(token, str(algorithm), header, self._public_key)
            else:
                raise Unauthorized(
                    "tokens signed with {algorithm} are not accepted",
                    params={"algorithm": repr(algorithm)},
                )
        except TokenRejected as exc:
            raise Unauthorized(exc.template, params=exc.params) from None
        for claim in ("sub", "role"):
            if claim not in claims:
                raise Unauthorized("the token has no {claim} claim", params={"claim": claim})
        return claims

    def _decode_public_key(
        self, token: str, algorithm: str, header: dict[str, Any], key: PublicKey
    ) -> dict[str, Any]:
        typ = header.get("typ")
        if not isinstance(typ, str) or _media_type(typ) not in self._token_types:
            raise Unauthorized("tokens of type {type} are not accepted", params={"type": repr(typ)})
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                leeway=self._keys.leeway,
                issuer=self._keys.issuer,
                audience=self._keys.audience,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(
                "the token is not valid: {reason}", params={"reason": str(exc)}
            ) from None
        # PyJWT reads "1700000000" as a time; the shared rule wants JSON numbers, and bounds
        # the lifetime by role as for HS256.
        check_times(
            claims, now=time.time(), leeway=self._keys.leeway, lifetimes=self._keys.lifetimes
        )
        return claims


def _media_type(typ: str) -> str:
    # RFC 7515 4.1.9: compared case-insensitively, and "application/" may be left out.
    lowered = typ.lower()
    return lowered.removeprefix("application/")


def mint_token(
    secret: bytes,
    *,
    role: str,
    sub: str,
    agency: str | None = None,
    name: str | None = None,
    ttl: float = 3600,
    **extra: Any,
) -> str:
    """An HS256 token as the server expects it: for the CLI, demos and load tests."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + int(ttl)}
    if agency is not None:
        claims["agency"] = agency
    if name is not None:
        claims["name"] = name
    claims.update(extra)
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
        raise Forbidden(
            "this route is for {allowed}; the token's role is {role}",
            params={"allowed": allowed, "role": identity.role},
        )
    return identity
