"""After a full tour of the three channels, failures included, no raw IIN and no token is kept.

Officials here carry IINs as their ``sub`` too, as the national identity provider issues them.
The tour runs on SQLite with admission on and rate limits in Redis; then the logs (every
logger, at DEBUG), every file under the data directory (database, WAL), every Redis key and
value under the run's prefix, and ``/metrics`` are searched for each raw IIN and each token.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.host.app import create_app
from core.identity.national_id import national_id_hash
from core.plugin_host import keys as plugin_host_keys
from plugins.kazakhstan.iin import synthetic_iin
from tests.support.consultations import DRAFT, window
from tests.support.identities import IIN_SECRET, auth, token
from tests.support.information import ITEM, REQUEST
from tests.support.petitions import PETITION

CITIZEN_A, CITIZEN_B = synthetic_iin(101), synthetic_iin(102)
MODERATOR_IIN, OFFICIAL_IIN = synthetic_iin(201), synthetic_iin(202)
TOKENS = {
    "citizen_a": token("citizen", CITIZEN_A, name="Aigerim Sadykova"),
    "citizen_b": token("citizen", CITIZEN_B, name="Dana Nur"),
    "moderator": token("moderator", MODERATOR_IIN, name="Dana Moderator"),
    "agency": token("agency", OFFICIAL_IIN, agency="almaty-akimat", name="Official"),
}
# A token that fails verification carries an IIN as well: the failure must not log it.
FORGED = TOKENS["citizen_a"][:-6] + "AAAAAA"


def h(name: str) -> dict[str, str]:
    return auth(TOKENS[name])


async def expect(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def tour(client: Any) -> None:
    # Petitions: filed, signed too early, approved, signed twice, answered too early.
    petition = await expect(
        await client.post("/api/v1/petitions", json=PETITION, headers=h("citizen_a")), 201
    )
    signatures = f"/api/v1/petitions/{petition['id']}/signatures"
    await expect(await client.post(signatures, headers=h("citizen_b")), 404)
    await expect(
        await client.post(
            f"/api/v1/petitions/{petition['id']}/moderation",
            json={"decision": "approve"},
            headers=h("moderator"),
        ),
        200,
    )
    await expect(await client.post(signatures, headers=h("citizen_a")), 201)
    await expect(await client.post(signatures, headers=h("citizen_a")), 200)
    await expect(await client.post(signatures, headers=h("citizen_b")), 201)
    await expect(await client.get(signatures), 200)
    await expect(
        await client.post(
            f"/api/v1/petitions/{petition['id']}/response",
            json={"text": "Too early."},
            headers=h("agency"),
        ),
        409,
    )
    await expect(
        await client.post("/api/v1/petitions", json={"title": ""}, headers=h("citizen_b")), 422
    )
    # Consultations: opened, commented, voted, a comment hidden, the report refused too early.
    consultation = await expect(
        await client.post("/api/v1/consultations", json={**DRAFT, **window()}, headers=h("agency")),
        201,
    )
    base = f"/api/v1/consultations/{consultation['id']}"
    comment = await expect(
        await client.post(
            f"{base}/comments", json={"text": "Publish the queue."}, headers=h("citizen_a")
        ),
        201,
    )
    await expect(
        await client.post(f"{base}/votes", json={"position": "support"}, headers=h("citizen_b")),
        201,
    )
    await expect(
        await client.post(
            f"{base}/comments/{comment['id']}/hide",
            json={"reason": "Abusive"},
            headers=h("moderator"),
        ),
        200,
    )
    await expect(
        await client.post(
            f"{base}/report", json={"summary": "Done.", "answers": []}, headers=h("agency")
        ),
        409,
    )
    # Information: an item published, a request filed, read and answered.
    await expect(await client.post("/api/v1/information", json=ITEM, headers=h("agency")), 201)
    filed = await expect(
        await client.post("/api/v1/information-requests", json=REQUEST, headers=h("citizen_a")),
        201,
    )
    await expect(
        await client.get(f"/api/v1/information-requests/{filed['id']}", headers=h("citizen_a")),
        200,
    )
    await expect(
        await client.post(
            f"/api/v1/information-requests/{filed['id']}/answer",
            json={"text": "Attached.", "language": "en"},
            headers=h("agency"),
        ),
        200,
    )
    # Failures of identity: a forged token, a non-ASCII one, the wrong role.
    await expect(await client.get("/api/v1/petitions", headers=auth(FORGED)), 401)
    await expect(await client.get("/api/v1/petitions", headers=auth("é" + FORGED)), 401)
    await expect(await client.post("/api/v1/information", json=ITEM, headers=h("citizen_a")), 403)


def needles() -> dict[str, bytes]:
    found = {
        f"iin {iin}": iin.encode() for iin in (CITIZEN_A, CITIZEN_B, MODERATOR_IIN, OFFICIAL_IIN)
    }
    for name, bearer in {**TOKENS, "forged": FORGED}.items():
        found[f"token {name}"] = bearer.encode()
        # The claims segment alone would still carry the IIN, base64-encoded.
        found[f"claims of token {name}"] = bearer.split(".")[1].encode()
    return found


def files_under(directory: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


async def redis_contents(redis_url: str, prefix: str) -> bytes:
    """Every key under ``prefix`` with its value, then the keys are deleted."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        chunks = list(keys)
        for key in keys:
            kind = await client.type(key)
            if kind == b"string":
                chunks.append(await client.get(key) or b"")
            elif kind == b"hash":
                for field, value in (await client.hgetall(key)).items():
                    chunks += [field, value]
            else:
                chunks.append(kind)
        if keys:
            await client.delete(*keys)
        return b"\n".join(chunks)
    finally:
        await client.aclose()


def lasting_budgets(make_settings: Any) -> dict[str, dict[str, float]]:
    """Every rate budget made slow to refill, so that its Redis key outlives the tour."""
    routes = create_app(make_settings())[plugin_host_keys.ROUTES]
    names = {spec.policy.rate.name for spec in routes if spec.policy.rate is not None}
    return {name: {"rate": 0.001, "burst": 1000} for name in names}


async def test_a_full_tour_leaves_no_raw_iin_or_token_in_logs_database_redis_or_metrics(
    make_client: Any,
    make_settings: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    redis_url: str,
) -> None:
    prefix = f"qatysu-scan-{uuid.uuid4().hex[:8]}:"
    caplog.set_level(logging.DEBUG)
    client = await make_client(
        redis={"url": redis_url, "key_prefix": prefix},
        admission={"enabled": True, "rate_overrides": lasting_budgets(make_settings)},
        server={"access_log": True},
    )
    await tour(client)
    metrics = await client.get("/metrics")
    assert metrics.status == 200
    sources = {
        "logs": caplog.text.encode(),
        "/metrics": await metrics.read(),
        "redis": await redis_contents(redis_url, prefix),
        **files_under(tmp_path),
    }
    assert any(name.endswith("qatysu.db") for name in sources)
    # The keys scanned are the ones the tour made, the officials' under their hashed IINs.
    for iin in (CITIZEN_A, CITIZEN_B, MODERATOR_IIN, OFFICIAL_IIN):
        assert national_id_hash(iin, IIN_SECRET.encode()).encode() in sources["redis"]
    leaks = [
        f"{what} in {where}"
        for where, content in sources.items()
        for what, needle in needles().items()
        if needle in content
    ]
    assert leaks == []
