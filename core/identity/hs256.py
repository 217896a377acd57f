"""A strict, fast verifier for HS256 JWTs, the tokens every citizen request carries.

PyJWT spends most of its time on generality (every algorithm, every option): per token it costs
several times what this verifier does (``python -m loadtests.token_cost`` prints both, side by
side; the figures are in BENCHMARKS.md). This verifier accepts exactly one shape and refuses
anything else:

- the whole token first: ASCII, at most ``MAX_TOKEN_LENGTH`` characters, three non-empty
  base64url segments without padding (so no caller has to check it, and nothing is decoded
  from a token that is not even shaped like one);
- a header whose ``alg`` is ``HS256``, with no ``crit`` or ``b64`` extension and a string
  ``kid`` if any;
- a signature that matches in constant time, compared in its canonical encoding;
- canonical base64url header and claims that are JSON objects;
- numeric ``exp`` and ``iat`` (both required: no token lives for ever), ``iat`` and ``nbf``
  not in the future, ``exp - iat`` within the maximum lifetime of the token's role
  (``check_times``, the one rule for every algorithm), a string ``sub`` and ``jti`` when
  present, and no ``aud``: these tokens are minted for this server alone.

``tests/core/identity/test_hs256_differential.py`` fuzzes it against PyJWT: it never accepts a token
PyJWT refuses, and refuses one PyJWT accepts only for a reason listed there. Other algorithms
(RS256, ES256) go through PyJWT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

import orjson

MAX_TOKEN_LENGTH = 8192
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_MALFORMED = "the bearer token is not a well-formed JWT"


class TokenRejected(Exception):
    """The token is not one this server accepts; the message says why. It is a template with
    named fields (``template``, ``params``), so the 401 made of it can be translated."""

    def __init__(self, template: str, **params: object) -> None:
        super().__init__(template.format(**params) if params else template)
        self.template = template
        self.params = params


def token_segments(token: str) -> list[str]:
    """The three segments of a token of the accepted shape, or TokenRejected."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected(
            "the bearer token is longer than {limit} characters", limit=MAX_TOKEN_LENGTH
        )
    # fullmatch, not match with ``$``, which would let a trailing newline through.
    if not token.isascii() or _TOKEN.fullmatch(token) is None:
        raise TokenRejected(_MALFORMED)
    return token.split(".")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_segment(segment: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenRejected(_MALFORMED) from None
    # Several encodings decode to the same bytes (unused low bits); only the canonical one is.
    if _b64url(raw) != segment:
        raise TokenRejected(_MALFORMED)
    return raw


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise TokenRejected(_MALFORMED) from None
    if not isinstance(value, dict):
        raise TokenRejected(_MALFORMED)
    return value


def segments_header(segments: list[str]) -> dict[str, Any]:
    """The unverified header, for choosing how to verify."""
    return _json_object(_decode_segment(segments[0]))


def verify_hs256(
    token: str, secret: bytes, *, now: float, leeway: float, lifetimes: Mapping[str, float]
) -> dict[str, Any]:
    """The verified claims of an HS256 token, or TokenRejected."""
    segments = token_segments(token)
    return verify_hs256_segments(
        segments, segments_header(segments), secret, now, leeway, lifetimes
    )


def verify_hs256_segments(
    segments: list[str],
    header: dict[str, Any],
    secret: bytes,
    now: float,
    leeway: float,
    lifetimes: Mapping[str, float],
) -> dict[str, Any]:
    """``verify_hs256`` for a token already split and its header already decoded."""
    header_segment, payload_segment, signature_segment = segments
    if header.get("alg") != "HS256":
        raise TokenRejected(
            "tokens signed with {algorithm} are not accepted", algorithm=repr(header.get("alg"))
        )
    if "crit" in header or "b64" in header:
        raise TokenRejected("the token's header asks for an extension this server does not know")
    if "kid" in header and not isinstance(header["kid"], str):
        raise TokenRejected("the token's kid header is not a string")
    expected = hmac.new(
        secret, f"{header_segment}.{payload_segment}".encode("ascii"), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(signature_segment, _b64url(expected)):
        raise TokenRejected("the token's signature does not verify")
    claims = _json_object(_decode_segment(payload_segment))
    check_times(claims, now=now, leeway=leeway, lifetimes=lifetimes)
    for name in ("sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenRejected("the token's {claim} claim is not a string", claim=name)
    if "aud" in claims:
        raise TokenRejected("the token is meant for another audience")
    return claims


def check_times(
    claims: dict[str, Any], *, now: float, leeway: float, lifetimes: Mapping[str, float]
) -> None:
    """The one rule on a token's times, whatever signed it: numeric ``exp`` and ``iat`` are
    required, ``exp`` not past, ``iat`` and ``nbf`` (if any) not to come, and ``exp - iat`` no
    longer than ``lifetimes`` allows the token's role (``max_lifetime``)."""
    exp = claims.get("exp")
    if not _is_number(exp):
        raise TokenRejected("the token has no numeric exp claim")
    if now > exp + leeway:
        raise TokenRejected("the token has expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_number(nbf) or now < nbf - leeway):
        raise TokenRejected("the token is not valid yet")
    iat = claims.get("iat")
    if not _is_number(iat):
        raise TokenRejected("the token has no numeric iat claim")
    if now < iat - leeway:
        raise TokenRejected("the token is not valid yet")
    longest = max_lifetime(claims, lifetimes)
    if exp - iat > longest:
        raise TokenRejected("the token lives longer than {seconds} seconds", seconds=f"{longest:g}")


def max_lifetime(claims: dict[str, Any], lifetimes: Mapping[str, float]) -> float:
    """The longest the token's role may live; the shortest of all for a role not listed (such
    a token is refused anyway, once its role is read)."""
    role = claims.get("role")
    longest = lifetimes.get(role) if isinstance(role, str) else None
    return min(lifetimes.values()) if longest is None else longest


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
