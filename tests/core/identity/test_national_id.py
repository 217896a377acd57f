"""Keyed hashing of a national identifier."""

from __future__ import annotations

from core.identity.national_id import national_id_hash

IDENTIFIER = "900101300126"


def test_the_hash_is_a_keyed_hmac_and_never_the_identifier() -> None:
    first = national_id_hash(IDENTIFIER, b"secret-one")
    assert first == national_id_hash(IDENTIFIER, b"secret-one")
    assert first != national_id_hash(IDENTIFIER, b"secret-two")
    assert first != national_id_hash("850715401236", b"secret-one")
    assert IDENTIFIER not in first
    assert len(first) == 64
    assert int(first, 16) >= 0


def test_the_hash_is_hmac_sha256_of_the_identifier() -> None:
    # RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
    assert national_id_hash("what do ya want for nothing?", b"Jefe") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
