"""The signer list's cursor: a keyset position, sealed so that it can carry a signer's hash.

A page of signers starts after the last one shown, (signed_at, citizen_hash), found by one seek
of the petition's index however deep the page. An offset would make every deep page scan the
rows before it, and anyone could ask for any offset. But the hash stands for one citizen on
every petition they signed: in clear, the cursor would let anyone link their signatures.

So the position is sealed with AES-GCM, under a key derived from the server's IIN hash secret,
and bound to the petition's id. A client can pass a cursor back, but cannot read it, forge one,
or move it to another petition: a cursor that does not open is a 400, before any query runs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import TypeAdapter

from core.sdk import BadRequest, CursorId

if TYPE_CHECKING:
    from core.sdk import TokenVerifier

NONCE_BYTES = 12
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
# (microseconds since 1970, the signer's hash). An opened position is checked for its shape
# all the same, as every cursor is (core.wire.paging).
_POSITION: TypeAdapter[tuple[int, CursorId]] = TypeAdapter(tuple[int, CursorId])

Position = tuple[dt.datetime, str]


class SignerCursors:
    """Seals and opens signer-list positions with one key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def for_server(cls, verifier: TokenVerifier) -> SignerCursors:
        """Cursors under a key derived from the IIN hash secret, never stored or shown."""
        return cls(bytes.fromhex(verifier.citizen_hash("petitions:signer-cursor")))

    def seal(self, petition_id: str, signed_at: dt.datetime, citizen_hash: str) -> str:
        # SQLite gives naive datetimes; every stored time is UTC.
        utc = signed_at if signed_at.tzinfo is not None else signed_at.replace(tzinfo=dt.UTC)
        microseconds = (utc - _EPOCH) // _MICROSECOND
        plain = _POSITION.dump_json((microseconds, citizen_hash))
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plain, petition_id.encode())
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, petition_id: str, cursor: str) -> Position:
        """The position sealed in ``cursor`` for this petition; 400 for any other string."""
        try:
            sealed = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode("ascii"))
            nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
            plain = self._aead.decrypt(nonce, body, petition_id.encode())
            microseconds, citizen_hash = _POSITION.validate_json(plain, strict=True)
            return _EPOCH + microseconds * _MICROSECOND, citizen_hash
        # ValueError covers a short nonce and a position of the wrong shape (pydantic's).
        except (binascii.Error, UnicodeEncodeError, ValueError, InvalidTag, OverflowError):
            raise BadRequest("the cursor is not one this server issued") from None
