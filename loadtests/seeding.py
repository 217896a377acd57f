"""Setting the stage through the public API: a petition to read and sign, its count afterwards.

Setup is a handful of requests, so it uses the standard library, synchronously, and never runs
while anything is being measured.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

VIRAL_PETITION = {
    "title": "Build a pedestrian bridge over Al-Farabi Avenue",
    "text": (
        "Every morning thousands of pupils cross six lanes of traffic at the crossing near the "
        "school. We ask for a pedestrian bridge before the new school year begins."
    ),
    "addressee": "government",
}


class SetupError(RuntimeError):
    """The server did not let the stage be set; the message says which request failed."""


def secret_from_env() -> str:
    secret = os.environ.get("QATYSU_JWT_SECRET", "")
    if not secret:
        raise SetupError("QATYSU_JWT_SECRET is not set: it signs the load test's tokens")
    return secret


# Tokens outlive any run. core.identity is imported where tokens are minted, not at the top:
# it takes over half a second, and every server wrapper and spawned generator process imports
# this module, most of them to mint nothing.
TOKEN_TTL = 4 * 3600
CITIZEN_NAME = "Aigerim Sadykova"


def mint(secret: str, *, role: str, sub: str, **claims: Any) -> str:
    from core.identity.tokens import mint_token

    return mint_token(secret.encode(), role=role, sub=sub, ttl=TOKEN_TTL, **claims)


def citizen_token(secret: str, number: int, name: str = CITIZEN_NAME) -> str:
    from plugins.kazakhstan.iin import synthetic_iin

    return mint(secret, role="citizen", sub=synthetic_iin(number), name=name)


def mint_citizen_tokens(secret: str, first: int, count: int) -> list[bytes]:
    """Tokens for ``count`` distinct citizens, minted before the clock starts (~20 us each);
    the same tokens as ``citizen_token``, without its per-token overhead."""
    from core.identity.tokens import mint_token
    from plugins.kazakhstan.iin import synthetic_iin

    key = secret.encode()
    return [
        mint_token(
            key, role="citizen", sub=synthetic_iin(n), name=CITIZEN_NAME, ttl=TOKEN_TTL
        ).encode("ascii")
        for n in range(first, first + count)
    ]


def call(
    base_url: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: object | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One JSON request; returns (status, decoded body or None). Never raises on HTTP errors."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _decode(error.read())


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def expect(status: int, body: Any, wanted: int | tuple[int, ...], what: str) -> Any:
    allowed = (wanted,) if isinstance(wanted, int) else wanted
    if status not in allowed:
        raise SetupError(f"{what}: HTTP {status}, expected {allowed}: {body}")
    return body


def create_approved_petition(
    base_url: str, secret: str, *, author_number: int = 179_000_000
) -> str:
    """A petition in collection that anyone can read and any citizen can sign; its id."""
    author = citizen_token(secret, author_number, name="Dana Nurlanovna")
    status, body = call(base_url, "POST", "/api/v1/petitions", token=author, body=VIRAL_PETITION)
    petition_id = str(expect(status, body, 201, "creating the petition")["id"])
    moderator = mint(secret, role="moderator", sub="moderator-loadtest")
    status, body = call(
        base_url,
        "POST",
        f"/api/v1/petitions/{petition_id}/moderation",
        token=moderator,
        body={"decision": "approve"},
    )
    expect(status, body, 200, "approving the petition")
    return petition_id


def signature_count(base_url: str, petition_id: str) -> int:
    status, body = call(base_url, "GET", f"/api/v1/petitions/{petition_id}")
    return int(expect(status, body, 200, "reading the petition")["signature_count"])


def settled_signature_count(
    base_url: str, petition_id: str, *, settle: float = 1.5, timeout: float = 15.0
) -> int:
    """The count once two reads ``settle`` seconds apart agree (reads are micro-cached)."""
    deadline = time.monotonic() + timeout
    previous = signature_count(base_url, petition_id)
    while time.monotonic() < deadline:
        time.sleep(settle)
        current = signature_count(base_url, petition_id)
        if current == previous:
            return current
        previous = current
    return previous


def wait_until_ready(base_url: str, *, timeout: float = 60.0, path: str = "/readyz") -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            status, _ = call(base_url, "GET", path, timeout=2.0)
            if status == 200:
                return
            last_error = f"HTTP {status}"
        except OSError as error:
            last_error = str(error)
        time.sleep(0.2)
    raise SetupError(f"{base_url}{path} not ready after {timeout:g} s: {last_error}")
