"""Differential fuzzing of the hand-written HS256 verifier against PyJWT.

The verifier must never accept a token PyJWT refuses, and must read the same claims from every
token both accept. Where it refuses a token PyJWT accepts, the reason must be one of the
deliberate strictnesses listed in ``documented_strictness``; any other disagreement fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.hs256 import MAX_TOKEN_LENGTH, TokenRejected, verify_hs256

SECRET = b"differential-fuzzing-secret-0123456789abcdef"
LEEWAY = 30.0
# Times are drawn this far from every boundary (exp - leeway, nbf/iat + leeway), so that the
# milliseconds between the two verifiers' clocks, and PyJWT's rounding of times to integers,
# cannot decide the outcome.
MARGIN = 300
NOW = int(time.time())


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def lax_decode(segment: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(segment.rstrip("=") + "=" * (-len(segment.rstrip("=")) % 4))
    except ValueError:
        return None


def far_offset() -> st.SearchStrategy[int]:
    return st.integers(-(10**7), 10**7).filter(
        lambda d: abs(d - LEEWAY) > MARGIN and abs(d + LEEWAY) > MARGIN
    )


def mostly(usual: st.SearchStrategy[Any], unusual: st.SearchStrategy[Any]) -> Any:
    """``usual`` nine times in ten: most tokens must be close enough to valid to be accepted."""
    return st.integers(0, 9).flatmap(lambda n: usual if n < 9 else unusual)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=4,
)
any_number = st.one_of(
    far_offset().map(lambda d: NOW + d),
    far_offset().map(lambda d: NOW + d + 0.5),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=True, allow_infinity=True),
)
odd_times = st.one_of(
    any_number, st.text(max_size=12), far_offset().map(lambda d: str(NOW + d)), json_values
)
future_times = st.integers(MARGIN + 31, 10**7).map(lambda d: NOW + d)
past_times = st.integers(MARGIN + 31, 10**7).map(lambda d: NOW - d)


def optional(frequency: int, values: st.SearchStrategy[Any]) -> Any:
    """A value ``frequency`` times in ten, else absent (None)."""
    return st.integers(0, 9).flatmap(lambda n: values if n < frequency else st.none())


@st.composite
def headers(draw: st.DrawFn) -> Any:
    header: dict[str, Any] = {
        "alg": draw(
            mostly(st.just("HS256"), st.sampled_from(["HS384", "none", "hs256", "RS256", None]))
        )
    }
    for name, frequency, values in (
        ("typ", 5, mostly(st.just("JWT"), json_scalars)),
        ("kid", 1, mostly(st.text(max_size=6), json_scalars)),
        ("crit", 1, st.lists(st.sampled_from(["b64", "exp", "x"]), max_size=2) | json_scalars),
        ("b64", 1, st.booleans()),
    ):
        value = draw(optional(frequency, values))
        if value is not None:
            header[name] = value
    if header["alg"] is None:
        del header["alg"]
    return draw(mostly(st.just(header), json_values))


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    claims: dict[str, Any] = {}
    for name, frequency, values in (
        ("exp", 9, mostly(future_times | future_times.map(lambda t: t + 0.25), odd_times)),
        ("nbf", 2, mostly(past_times, odd_times)),
        ("iat", 3, mostly(past_times, odd_times)),
        ("sub", 8, mostly(st.text(max_size=12), json_scalars)),
        ("jti", 1, mostly(st.text(max_size=6), json_scalars)),
        ("aud", 1, st.text(max_size=6) | st.lists(st.text(max_size=4), max_size=2)),
        ("role", 5, st.sampled_from(["citizen", "operator"])),
    ):
        value = draw(optional(frequency, values))
        if value is not None:
            claims[name] = value
    return draw(mostly(st.just(claims), json_values))


def encode_json(value: Any, variant: str) -> bytes:
    text = json.dumps(value, ensure_ascii=variant != "utf8")
    if variant == "utf16":
        return text.encode("utf-16")
    if variant == "garbage":
        return text.encode()[:-1]
    return text.encode()


def encode_segment(raw: bytes, variant: str) -> str:
    canonical = b64url(raw)
    if variant == "padded":
        return base64.urlsafe_b64encode(raw).decode()
    if variant == "non_canonical" and len(canonical) % 4 in (2, 3):
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return canonical[:-1] + alphabet[alphabet.index(canonical[-1]) | 1]
    return canonical


@st.composite
def tokens(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 19)) == 0:
        return draw(st.text(max_size=80))
    encodings = mostly(st.just("canonical"), st.sampled_from(["padded", "non_canonical"]))
    header = encode_segment(
        encode_json(draw(headers()), draw(mostly(st.just("plain"), st.just("utf16")))),
        draw(encodings),
    )
    payload = encode_segment(
        encode_json(
            draw(payloads()),
            draw(mostly(st.sampled_from(["plain", "utf8"]), st.sampled_from(["utf16", "garbage"]))),
        ),
        draw(encodings),
    )
    key = draw(mostly(st.just(SECRET), st.just(b"another-secret-of-enough-length-0123456")))
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{encode_segment(signature, draw(encodings))}"
    mutation = draw(
        mostly(
            st.just("none"),
            st.sampled_from(["non_ascii", "newline", "extra_dot", "truncate", "long"]),
        )
    )
    if mutation == "non_ascii":
        at = draw(st.integers(0, len(token)))
        token = token[:at] + draw(st.sampled_from(["é", "\u0430", "\x00", " "])) + token[at:]
    elif mutation == "newline":
        token += "\n"
    elif mutation == "extra_dot":
        token += "."
    elif mutation == "truncate":
        token = token[: draw(st.integers(0, len(token) - 1))]
    elif mutation == "long":
        token = token[:-1] + "A" * (MAX_TOKEN_LENGTH + 1 - len(token)) + token[-1]
    return token


def ours(token: str) -> dict[str, Any] | None:
    try:
        return verify_hs256(token, SECRET, now=time.time(), leeway=LEEWAY)
    except TokenRejected:
        return None


def pyjwt(token: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, SECRET, algorithms=["HS256"], leeway=LEEWAY, options={"require": ["exp"]}
        )
    except jwt.PyJWTError:
        return None
    return claims


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def documented_strictness(token: str) -> str | None:
    """Why the verifier may refuse a token PyJWT accepts; None when no reason applies."""
    if len(token) > MAX_TOKEN_LENGTH:
        return "a token longer than MAX_TOKEN_LENGTH is refused before any decoding"
    if "=" in token:
        return "segments carry no base64 padding (RFC 7515 §2: base64url without padding)"
    parts = token.split(".")
    decoded = [lax_decode(part) for part in parts[:2]]
    for raw in decoded:
        if raw is None:
            return None
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError:
            return "JSON must be RFC 8259 UTF-8: no NaN, Infinity, lone surrogates or UTF-16"
    header, claims = (json.loads(raw) for raw in decoded)  # type: ignore[arg-type]
    if "crit" in header or "b64" in header:
        return "no JWS extension (crit, b64) is understood, so none is accepted"
    if "aud" in claims:
        return "any aud claim is refused, even an empty one PyJWT reads as absent"
    for name in ("exp", "nbf", "iat"):
        if name in claims and claims[name] is not None and not is_number(claims[name]):
            return "times are JSON numbers (RFC 7519 §2 NumericDate), not strings or booleans"
    return None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens())
def test_the_verifier_agrees_with_pyjwt_or_is_stricter_for_a_documented_reason(token: str) -> None:
    mine = ours(token)
    theirs = pyjwt(token)
    if mine is not None:
        assert theirs == mine, "accepted by the verifier with other claims than PyJWT reads"
    elif theirs is not None:
        assert documented_strictness(token) is not None, "refused by the verifier only"


def test_a_well_formed_token_is_accepted_by_both_with_the_same_claims() -> None:
    exp = NOW + 3600
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"exp": exp, "sub": "x"}).encode())
    signature = b64url(hmac.new(SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    token = f"{header}.{payload}.{signature}"
    assert ours(token) == pyjwt(token) == {"exp": exp, "sub": "x"}
