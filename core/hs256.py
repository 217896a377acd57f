"""A strict, fast verifier for HS256 JWTs, the tokens every citizen request carries.

PyJWT spends most of its time on generality (every algorithm, every option); on this hot
path it cost about a quarter of a millisecond per request. This verifier accepts exactly one
shape: three base64url segments, a header whose ``alg`` is ``HS256``, a signature that matches
in constant time, and numeric ``exp`` (required), ``nbf`` and ``iat``. Anything else is refused.
Other algorithms (RS256, ES256) still go through PyJWT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Any

import orjson

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


class TokenRejected(Exception):
    """The token is not one this server accepts; the message says why."""


def _decode_segment(segment: str) -> bytes:
    if not _SEGMENT.match(segment):
        raise TokenRejected("the bearer token is not a well-formed JWT")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenRejected("the bearer token is not a well-formed JWT") from None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise TokenRejected("the bearer token is not a well-formed JWT") from None
    if not isinstance(value, dict):
        raise TokenRejected("the bearer token is not a well-formed JWT")
    return value


def token_header(token: str) -> dict[str, Any]:
    """The unverified header, for choosing how to verify."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected("the bearer token is not a well-formed JWT")
    return _json_object(_decode_segment(parts[0]))


def verify_hs256(token: str, secret: bytes, *, now: float, leeway: float) -> dict[str, Any]:
    """The verified claims of an HS256 token, or TokenRejected."""
    header_segment, payload_segment, signature_segment = token.split(".")
    signature = _decode_segment(signature_segment)
    expected = hmac.new(
        secret, f"{header_segment}.{payload_segment}".encode("ascii"), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(signature, expected):
        raise TokenRejected("the token's signature does not verify")
    claims = _json_object(_decode_segment(payload_segment))
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenRejected("the token has no numeric exp claim")
    if now > exp + leeway:
        raise TokenRejected("the token has expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_number(nbf) or now < nbf - leeway):
        raise TokenRejected("the token is not valid yet")
    iat = claims.get("iat")
    if iat is not None and not _is_number(iat):
        raise TokenRejected("the token's iat claim is not a number")
    return claims


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
