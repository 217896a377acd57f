"""Keyed hashing of a national identifier.

A raw national identifier is personal data: the server keeps only its keyed hash, an
HMAC-SHA256 under a server secret (``identity.iin_hash_secret``), so a leaked database cannot
be reversed by enumerating the identifiers (birth dates and serials, say). The identifier's
format is the jurisdiction's (``Jurisdiction.national_id_problem``).
"""

from __future__ import annotations

import hashlib
import hmac


def national_id_hash(value: str, secret: bytes) -> str:
    """The keyed hash under which a national identifier is stored and compared."""
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()
