"""Differential fuzzing of the hand-written HS256 verifier against PyJWT.

The verifier must never accept a token PyJWT refuses, and must read the same claims from every
token both accept. Where it refuses a token PyJWT accepts, the reason must be one of the
deliberate strictnesses listed in ``documented_strictness``; any other disagreement fails.

PyJWT is asked to require ``exp`` and ``iat`` as the verifier does. It has no rule on the
lifetime, ``exp - iat``: the verifier's must match ``allowed_lifetime``, an independent
statement of the per-role maximum, on every token it accepts.
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

from core.identity.hs256 import MAX_TOKEN_LENGTH, TokenRejected, verify_hs256

SECRET = b"differential-fuzzing-secret-0123456789abcdef"
LEEWAY = 30.0
# Times are drawn this far from every boundary (exp - leeway, nbf/iat + leeway), so that the
# milliseconds between the two verifiers' clocks, and PyJWT's rounding of times to integers,
# cannot decide the outcome.
MARGIN = 300
NOW = int(time.time())
HOUR = 3600
LIFETIMES = {"citizen": 24 * HOUR, "agency": 8 * HOUR, "moderator": 12 * HOUR, "operator": 8 * HOUR}


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
# Issued lately enough that a token living about its role's maximum has not expired.
recent_times = st.integers(MARGIN + 31, 4 * HOUR).map(lambda d: NOW - d)
roles = st.sampled_from([*LIFETIMES, "mayor"])


def allowed_lifetime(claims: dict[str, Any]) -> float:
    """The longest ``exp - iat`` the token's role may have; the shortest for any other role."""
    role = claims.get("role")
    if isinstance(role, str) and role in LIFETIMES:
        return LIFETIMES[role]
    return min(LIFETIMES.values())


def lifetimes_around(longest: float) -> st.SearchStrategy[float]:
    """Lifetimes at, just past, well within and well past ``longest``."""
    offsets = st.integers(1, HOUR)
    return st.one_of(
        st.sampled_from([longest, longest + 0.5, longest + 1]),
        offsets.map(lambda d: longest - d),
        offsets.map(lambda d: longest + d),
    )


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
        ("role", 8, roles),
        ("iat", 9, mostly(recent_times, past_times | odd_times)),
        ("nbf", 2, mostly(past_times, odd_times)),
        ("sub", 8, mostly(st.text(max_size=12), json_scalars)),
        ("jti", 1, mostly(st.text(max_size=6), json_scalars)),
        ("aud", 1, st.text(max_size=6) | st.lists(st.text(max_size=4), max_size=2)),
    ):
        value = draw(optional(frequency, values))
        if value is not None:
            claims[name] = value
    iat = claims.get("iat")
    lived = (
        lifetimes_around(allowed_lifetime(claims)).map(lambda lifetime: iat + lifetime)
        if is_number(iat)
        else future_times
    )
    exp = draw(optional(9, mostly(lived, future_times.map(lambda t: t + 0.25) | odd_times)))
    if exp is not None:
        claims["exp"] = exp
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
        return verify_hs256(token, SECRET, now=time.time(), leeway=LEEWAY, lifetimes=LIFETIMES)
    except TokenRejected:
        return None


def pyjwt(token: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            leeway=LEEWAY,
            options={"require": ["exp", "iat"]},
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
    if claims["exp"] - claims["iat"] > allowed_lifetime(claims):
        return "exp - iat is longer than the role's maximum lifetime, a rule PyJWT does not have"
    return None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens())
def test_the_verifier_agrees_with_pyjwt_or_is_stricter_for_a_documented_reason(token: str) -> None:
    mine = ours(token)
    theirs = pyjwt(token)
    if mine is not None:
        assert theirs == mine, "accepted by the verifier with other claims than PyJWT reads"
        assert mine["exp"] - mine["iat"] <= allowed_lifetime(mine), "outlives its role"
    elif theirs is not None:
        assert documented_strictness(token) is not None, "refused by the verifier only"


def test_a_well_formed_token_is_accepted_by_both_with_the_same_claims() -> None:
    exp = NOW + 3600
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"iat": NOW, "exp": exp, "sub": "x"}).encode())
    signature = b64url(hmac.new(SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    token = f"{header}.{payload}.{signature}"
    assert ours(token) == pyjwt(token) == {"iat": NOW, "exp": exp, "sub": "x"}


def signed_claims(claims: dict[str, Any]) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = b64url(hmac.new(SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def test_a_missing_iat_is_refused_by_both_and_a_long_lifetime_by_the_verifier_alone() -> None:
    """The strategies above produce each case the new claims decide, so the fuzzing covers
    them: PyJWT and the verifier both refusing a missing iat, and only the verifier refusing
    a lifetime beyond the role's."""
    no_iat = signed_claims({"sub": "m-1", "role": "moderator", "exp": 10**12})
    assert ours(no_iat) is None
    assert pyjwt(no_iat) is None
    ten_years = signed_claims(
        {"sub": "m-1", "role": "moderator", "iat": NOW, "exp": NOW + 10 * 365 * 24 * HOUR}
    )
    assert ours(ten_years) is None
    assert pyjwt(ten_years) is not None
    assert documented_strictness(ten_years) is not None
    at_most = signed_claims({"sub": "c", "role": "citizen", "iat": NOW, "exp": NOW + 24 * HOUR})
    assert ours(at_most) == pyjwt(at_most)
    assert ours(at_most) is not None
