"""The HS256 verifier on its own: the one token shape it accepts, and each refusal's reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson
import pytest

from core.identity.hs256 import (
    MAX_TOKEN_LENGTH,
    TokenRejected,
    check_times,
    segments_header,
    token_segments,
    verify_hs256,
    verify_hs256_segments,
)

SECRET = b"unit-test-hs256-secret-0123456789abcdef"
NOW = 1_800_000_000.0
LEEWAY = 30.0
HEADER = {"alg": "HS256", "typ": "JWT"}
CLAIMS = {"sub": "official-1", "role": "operator", "iat": NOW - 60, "exp": NOW + 3600}
MALFORMED = "the bearer token is not a well-formed JWT"
HOUR = 3600.0
LIFETIMES = {"citizen": 24 * HOUR, "agency": 8 * HOUR, "moderator": 8 * HOUR, "operator": 8 * HOUR}
MISSING = object()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def signed(header_segment: str, payload_segment: str, secret: bytes = SECRET) -> str:
    signature = hmac.new(
        secret, f"{header_segment}.{payload_segment}".encode(), hashlib.sha256
    ).digest()
    return f"{header_segment}.{payload_segment}.{b64url(signature)}"


def token(
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
    secret: bytes = SECRET,
) -> str:
    return signed(
        b64url(orjson.dumps(HEADER if header is None else header)),
        b64url(orjson.dumps(CLAIMS if claims is None else claims)),
        secret,
    )


def verify(value: str, *, now: float = NOW) -> dict[str, Any]:
    return verify_hs256(value, SECRET, now=now, leeway=LEEWAY, lifetimes=LIFETIMES)


def refusal(value: str, *, now: float = NOW) -> str:
    with pytest.raises(TokenRejected) as caught:
        verify(value, now=now)
    return str(caught.value)


def non_canonical(segment: str) -> str:
    """The same bytes in another encoding: the last character's unused low bits set.

    Only segments whose length is not a multiple of four have unused bits."""
    assert len(segment) % 4 in (2, 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) + 1]


# --- what is accepted ------------------------------------------------------------------------


def test_a_well_formed_token_gives_its_claims_exactly() -> None:
    assert verify(token()) == CLAIMS


def test_the_split_verifier_agrees_with_the_whole_token_verifier() -> None:
    value = token()
    segments = token_segments(value)

    claims = verify_hs256_segments(
        segments, segments_header(segments), SECRET, NOW, LEEWAY, LIFETIMES
    )

    assert segments == value.split(".")
    assert claims == verify(value)


def test_the_unverified_header_is_read_from_a_token_of_the_accepted_shape() -> None:
    segments = token_segments(token(header={"alg": "HS256", "kid": "k1"}))
    assert segments_header(segments) == {
        "alg": "HS256",
        "kid": "k1",
    }


def test_a_string_kid_is_accepted() -> None:
    assert verify(token(header={"alg": "HS256", "kid": "2026-key"})) == CLAIMS


def test_a_token_of_exactly_the_maximum_length_is_accepted() -> None:
    # One byte of padding more at a time, until the token reaches the limit; with this header
    # the limit is a length a base64url payload can have.
    pad = next(
        n
        for n in range(MAX_TOKEN_LENGTH)
        if len(token({**CLAIMS, "pad": "x" * n})) >= MAX_TOKEN_LENGTH
    )
    value = token({**CLAIMS, "pad": "x" * pad})

    assert len(value) == MAX_TOKEN_LENGTH
    assert verify(value)["pad"] == "x" * pad


# --- time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        ({"exp": NOW - LEEWAY, "iat": NOW - 60}, True),
        ({"exp": NOW - LEEWAY - 0.001, "iat": NOW - 60}, False),
        ({"exp": NOW, "iat": NOW - 60, "nbf": NOW + LEEWAY}, True),
        ({"exp": NOW, "iat": NOW - 60, "nbf": NOW + LEEWAY + 0.001}, False),
        ({"exp": NOW + LEEWAY, "iat": NOW + LEEWAY}, True),
        ({"exp": NOW + LEEWAY, "iat": NOW + LEEWAY + 0.001}, False),
    ],
)
def test_times_are_checked_with_the_leeway_inclusive(
    claims: dict[str, Any], accepted: bool
) -> None:
    claims = {**claims, "role": "operator"}
    if accepted:
        check_times(claims, now=NOW, leeway=LEEWAY, lifetimes=LIFETIMES)
    else:
        with pytest.raises(TokenRejected):
            check_times(claims, now=NOW, leeway=LEEWAY, lifetimes=LIFETIMES)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": NOW - LEEWAY - 1}, "the token has expired"),
        ({"exp": MISSING}, "the token has no numeric exp claim"),
        ({"exp": str(NOW + 60)}, "the token has no numeric exp claim"),
        ({"exp": True}, "the token has no numeric exp claim"),
        ({"nbf": NOW + LEEWAY + 1}, "the token is not valid yet"),
        ({"nbf": "soon"}, "the token is not valid yet"),
        ({"iat": NOW + LEEWAY + 1}, "the token is not valid yet"),
        ({"iat": "today"}, "the token has no numeric iat claim"),
        ({"iat": MISSING}, "the token has no numeric iat claim"),
        ({"iat": str(NOW - 60)}, "the token has no numeric iat claim"),
        ({"iat": False}, "the token has no numeric iat claim"),
        ({"iat": None}, "the token has no numeric iat claim"),
    ],
)
def test_a_time_claim_out_of_bounds_or_not_a_number_is_refused(
    changes: dict[str, Any], reason: str
) -> None:
    claims = {name: value for name, value in {**CLAIMS, **changes}.items() if value is not MISSING}
    assert refusal(token(claims)) == reason


# --- lifetime --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "lifetime", "accepted"),
    [
        ("citizen", 24 * HOUR, True),
        ("citizen", 24 * HOUR + 1, False),
        ("agency", 8 * HOUR, True),
        ("agency", 8 * HOUR + 0.5, False),
        ("moderator", 8 * HOUR, True),
        ("moderator", 24 * HOUR, False),
        ("operator", 8 * HOUR, True),
        ("operator", 8 * HOUR + 1, False),
        # A role no lifetime names (refused later, as an unknown role) gets the shortest.
        ("mayor", 8 * HOUR, True),
        ("mayor", 8 * HOUR + 1, False),
        (None, 8 * HOUR + 1, False),
    ],
)
def test_a_token_may_live_no_longer_than_its_roles_maximum(
    role: str | None, lifetime: float, accepted: bool
) -> None:
    claims = {"sub": "s-1", "role": role, "iat": NOW - 60, "exp": NOW - 60 + lifetime}
    if accepted:
        assert verify(token(claims)) == claims
    else:
        longest = f"{LIFETIMES.get(role or '', 8 * HOUR):g}"
        assert refusal(token(claims)) == f"the token lives longer than {longest} seconds"


@pytest.mark.parametrize(
    "claims",
    [
        # The tokens of the issue, accepted on 6a18a39: no iat and exp = 10^12, and ten years.
        {"sub": "m-1", "role": "moderator", "exp": 10**12},
        {"sub": "m-1", "role": "moderator", "iat": NOW - 60, "exp": NOW + 10 * 365 * 24 * HOUR},
        # Issued in the future, so that its lifetime starts later than it says.
        {"sub": "m-1", "role": "moderator", "iat": NOW + HOUR, "exp": NOW + 2 * HOUR},
    ],
)
def test_a_token_that_would_outlive_its_role_is_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(TokenRejected):
        verify(token(claims))


# --- header and claims -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": "none"}, "tokens signed with 'none' are not accepted"),
        ({"alg": "HS512"}, "tokens signed with 'HS512' are not accepted"),
        ({"typ": "JWT"}, "tokens signed with None are not accepted"),
        (
            {"alg": "HS256", "crit": ["exp"]},
            "the token's header asks for an extension this server does not know",
        ),
        (
            {"alg": "HS256", "b64": False},
            "the token's header asks for an extension this server does not know",
        ),
        ({"alg": "HS256", "kid": 7}, "the token's kid header is not a string"),
    ],
)
def test_a_header_other_than_plain_hs256_is_refused(header: dict[str, Any], reason: str) -> None:
    assert refusal(token(header=header)) == reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sub": 42}, "the token's sub claim is not a string"),
        ({"jti": 1}, "the token's jti claim is not a string"),
        ({"aud": "another-service"}, "the token is meant for another audience"),
    ],
)
def test_a_claim_of_the_wrong_kind_is_refused(changes: dict[str, Any], reason: str) -> None:
    assert refusal(token({**CLAIMS, **changes})) == reason


def test_a_token_signed_with_another_secret_does_not_verify() -> None:
    assert refusal(token(secret=b"another-secret-0123456789abcdef0123")) == (
        "the token's signature does not verify"
    )


def test_a_payload_changed_after_signing_does_not_verify() -> None:
    header_segment, _, signature = token().split(".")
    forged = b64url(orjson.dumps({**CLAIMS, "role": "moderator"}))
    assert refusal(f"{header_segment}.{forged}.{signature}") == (
        "the token's signature does not verify"
    )


def test_a_signature_in_a_non_canonical_encoding_does_not_verify() -> None:
    header_segment, payload_segment, signature = token().split(".")
    assert refusal(f"{header_segment}.{payload_segment}.{non_canonical(signature)}") == (
        "the token's signature does not verify"
    )


def test_a_payload_in_a_non_canonical_encoding_is_refused_even_when_signed() -> None:
    header_segment = b64url(orjson.dumps(HEADER))
    # A payload whose encoding ends with unused bits: one with a length not a multiple of 3.
    payload_segment = next(
        segment
        for segment in (b64url(orjson.dumps({**CLAIMS, "n": "x" * n})) for n in range(3))
        if len(segment) % 4
    )
    assert refusal(signed(header_segment, non_canonical(payload_segment))) == MALFORMED


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"a string"', b"{not json"])
def test_claims_that_are_not_a_json_object_are_refused(payload: bytes) -> None:
    assert refusal(signed(b64url(orjson.dumps(HEADER)), b64url(payload))) == MALFORMED


@pytest.mark.parametrize("header", [b"[]", b"null", b"{broken"])
def test_a_header_that_is_not_a_json_object_is_refused(header: bytes) -> None:
    assert refusal(signed(b64url(header), b64url(orjson.dumps(CLAIMS)))) == MALFORMED


# --- shape -----------------------------------------------------------------------------------


def test_a_token_longer_than_the_maximum_is_refused_before_anything_is_decoded() -> None:
    assert refusal("a" * (MAX_TOKEN_LENGTH + 1)) == (
        f"the bearer token is longer than {MAX_TOKEN_LENGTH} characters"
    )


@pytest.mark.parametrize(
    "shape",
    [
        "two.segments",
        "four.segments.in.all",
        "an..empty",
        "padded=.segment.here",
        "plus+.slash/.chars",
        "spaces in.the.token",
        "ünicode.segment.here",
        "trailing.newline.here\n",
        "",
    ],
)
def test_a_token_not_of_the_accepted_shape_is_refused_as_malformed(shape: str) -> None:
    assert refusal(shape) == MALFORMED


def test_a_valid_token_with_a_trailing_newline_is_refused() -> None:
    assert refusal(token() + "\n") == MALFORMED
