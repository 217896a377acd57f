"""A signing flood with poisoned requests mixed in, against a running server; prints outcomes.

Valid signatures by distinct citizens go to one approved petition, and every ``--every``-th
request is a poisoned one (``POST /api/v1/petitions/%00/signatures``), which PostgreSQL cannot
store. Two shapes: ``burst`` sends everything at once; ``steady`` keeps ``--in-flight``
requests outstanding. It prints how the valid signatures were answered and the petition's
final count, so one bad request spoiling other writes shows as valid signatures not 201.

    QATYSU_JWT_SECRET=... python -m loadtests.poisoned --url http://127.0.0.1:8080 --shape burst
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter

import aiohttp

from loadtests.options import add_server_url
from loadtests.seeding import (
    citizen_token,
    create_approved_petition,
    secret_from_env,
    settled_signature_count,
)

FIRST_SIGNER = 1_000


async def flood(
    url: str, petition_id: str, secret: str, *, valid: int, every: int, shape: str, in_flight: int
) -> tuple[Counter[int], Counter[int], Counter[str]]:
    requests: list[tuple[str, str]] = []
    for n in range(valid):
        token = citizen_token(secret, FIRST_SIGNER + n)
        requests.append(("valid", f"/api/v1/petitions/{petition_id}/signatures|{token}"))
        if every and (n + 1) % every == 0:
            requests.append(("poisoned", f"/api/v1/petitions/%00/signatures|{token}"))
    valid_statuses: Counter[int] = Counter()
    refusals: Counter[str] = Counter()
    poisoned_statuses: Counter[int] = Counter()
    limit = asyncio.Semaphore(len(requests) if shape == "burst" else in_flight)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(kind: str, target: str) -> None:
            path, token = target.split("|")
            async with (
                limit,
                session.post(url + path, headers={"Authorization": f"Bearer {token}"}) as response,
            ):
                body = await response.read()
                (valid_statuses if kind == "valid" else poisoned_statuses)[response.status] += 1
                if kind == "valid" and response.status >= 300:
                    refusals[_detail(body)] += 1

        await asyncio.gather(*(send(kind, target) for kind, target in requests))
    return valid_statuses, poisoned_statuses, refusals


def _detail(body: bytes) -> str:
    try:
        return str(json.loads(body).get("detail"))
    except ValueError:
        return body[:80].decode("utf-8", "replace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_url(parser, "http://127.0.0.1:8080")
    parser.add_argument("--valid", type=int, default=600)
    parser.add_argument("--every", type=int, default=100, help="a poisoned request after every N")
    parser.add_argument("--shape", choices=("burst", "steady"), default="burst")
    parser.add_argument("--in-flight", type=int, default=24)
    args = parser.parse_args()
    secret = secret_from_env()
    petition_id = create_approved_petition(args.url, secret)
    started = time.monotonic()
    valid, poisoned, refusals = asyncio.run(
        flood(
            args.url,
            petition_id,
            secret,
            valid=args.valid,
            every=args.every,
            shape=args.shape,
            in_flight=args.in_flight,
        )
    )
    elapsed = time.monotonic() - started
    sent = sum(poisoned.values())
    print(f"shape {args.shape}: {args.valid} valid, {sent} poisoned, {elapsed:.1f} s")
    print(f"valid answered:    {dict(sorted(valid.items()))}")
    print(f"poisoned answered: {dict(sorted(poisoned.items()))}")
    for detail, count in refusals.most_common():
        print(f"  valid refused {count}x: {detail}")
    print(f"petition count:    {settled_signature_count(args.url, petition_id)}")


if __name__ == "__main__":
    main()
