"""The slow-body attack against a fresh ``qatysu serve``: how many other clients are served, and
when the slow requests are cut.

``--slow`` connections, each from its own address (``X-Forwarded-For``, believed from loopback)
with its own citizen token, send ``POST /api/v1/petitions`` announcing ``Content-Length: 400``
and then only 10 bytes of body. ``--settle`` seconds later, ``--ordinary`` requests from other
addresses (public list reads and signatures, half each) are sent at once. It prints how those
were answered, the admission slots in use, and for the slow requests what they got and when.

The server runs the code of ``--tree`` (default: this checkout), so the same command measures
another revision from a worktree of it:

    python -m loadtests.slowbodies
    git worktree add --detach /tmp/base main && python -m loadtests.slowbodies --tree /tmp/base
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from loadtests.options import add_tree
from loadtests.seeding import citizen_token, create_approved_petition
from loadtests.servers import (
    BENCH_SECRET_ENV,
    REPO_ROOT,
    TRUST_LOOPBACK_ENV,
    ManagedServer,
    free_port,
)

SLOW_HEAD = (
    "POST /api/v1/petitions HTTP/1.1\r\nHost: qatysu\r\nContent-Type: application/json\r\n"
    "Content-Length: 400\r\nX-Forwarded-For: {address}\r\nAuthorization: Bearer {token}\r\n\r\n"
)
FIRST_BYTES = b'{"title": '
FIRST_SLOW_CITIZEN = 500_000
FIRST_ORDINARY_CITIZEN = 600_000


def address(block: int, n: int) -> str:
    return f"10.{block}.{n // 256}.{n % 256}"


@contextlib.contextmanager
def server(tree: Path, port: int) -> Iterator[str]:
    """``qatysu serve`` from ``tree``, on SQLite in a temporary directory, trusting loopback."""
    with tempfile.TemporaryDirectory(prefix="qatysu-slowbodies-") as data_dir:
        env = {
            **os.environ,
            **BENCH_SECRET_ENV,
            "PYTHONPATH": str(tree),
            "QATYSU_SERVER__DATA_DIR": data_dir,
            "QATYSU_SERVER__ACCESS_LOG": "false",
            **TRUST_LOOPBACK_ENV,
        }
        with ManagedServer(
            command=[sys.executable, "-m", "core.host.cli", "serve", "--port", str(port)],
            env=env,
            ready_path="/readyz",
            port=port,
            log_path=Path(data_dir) / "server.log",
            cwd=tree,
        ) as managed:
            yield managed.url


async def slow_request(
    port: int, n: int, secret: str, started: float, watch: float
) -> tuple[int | None, float | None, float | None]:
    """One slow body: (the status it was answered, or None; seconds until that answer; seconds
    until the connection ended), the times None when it did not happen within ``watch``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    token = citizen_token(secret, FIRST_SLOW_CITIZEN + n)
    writer.write(SLOW_HEAD.format(address=address(1, n), token=token).encode() + FIRST_BYTES)
    status: int | None = None
    answered: float | None = None
    ended: float | None = None
    try:
        async with asyncio.timeout_at(asyncio.get_running_loop().time() + watch):
            first = await reader.read(64)
            if first.startswith(b"HTTP/1.1 "):
                status, answered = int(first.split(b" ", 2)[1]), time.monotonic() - started
            while first:
                first = await reader.read(4096)
            ended = time.monotonic() - started
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
    return status, answered, ended


async def ordinary(url: str, petition_id: str, secret: str, count: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as session:

        async def one(n: int) -> None:
            headers = {"X-Forwarded-For": address(2, n)}
            if n % 2:
                token = citizen_token(secret, FIRST_ORDINARY_CITIZEN + n)
                request = session.post(
                    f"{url}/api/v1/petitions/{petition_id}/signatures",
                    headers={**headers, "Authorization": f"Bearer {token}"},
                )
            else:
                request = session.get(f"{url}/api/v1/petitions", headers=headers)
            try:
                async with request as response:
                    await response.read()
                    statuses[response.status] += 1
            except (TimeoutError, aiohttp.ClientError):
                statuses[0] += 1

        await asyncio.gather(*(one(n) for n in range(count)))
    return statuses


async def slots_in_use(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        text = await response.text()
    held = re.findall(r'^qatysu_admission_inflight\{priority="(\w+)"\} (\S+)$', text, re.M)
    return ", ".join(f"{name} {float(value):g}" for name, value in held) or "(no gauge)"


async def attack(url: str, port: int, args: argparse.Namespace) -> None:
    secret = BENCH_SECRET_ENV["QATYSU_JWT_SECRET"]
    petition_id = create_approved_petition(url, secret)
    started = time.monotonic()
    slow = [
        asyncio.ensure_future(slow_request(port, n, secret, started, args.watch))
        for n in range(args.slow)
    ]
    await asyncio.sleep(args.settle)
    print(f"after {args.settle:g} s, admission slots in use: {await slots_in_use(url)}")
    statuses = await ordinary(url, petition_id, secret, args.ordinary)
    served = sum(count for status, count in statuses.items() if 200 <= status < 300)
    print(
        f"ordinary requests: {served} of {args.ordinary} got a 2xx"
        f" ({100 * served / args.ordinary:.0f}%); statuses {dict(sorted(statuses.items()))}"
        f" (0: no answer within 15 s)"
    )
    results = await asyncio.gather(*slow)
    statuses_of_slow = Counter(status for status, _, _ in results)
    print(
        f"slow requests: answered {dict(sorted(statuses_of_slow.items(), key=str))}"
        f" within {args.watch:g} s (None: no answer)"
    )
    for what, index in (("answered", 1), ("closed", 2)):
        times = sorted(result[index] for result in results if result[index] is not None)
        if times:
            print(
                f"  {len(times)} {what}: first {times[0]:.1f} s, median"
                f" {statistics.median(times):.1f} s, last {times[-1]:.1f} s after they opened"
            )
    still_open = sum(1 for result in results if result[2] is None)
    print(f"  {still_open} of {args.slow} still open after {args.watch:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_tree(parser, REPO_ROOT)
    parser.add_argument("--slow", type=int, default=250, help="slow-body connections")
    parser.add_argument("--ordinary", type=int, default=100, help="other clients' requests")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before them")
    parser.add_argument("--watch", type=float, default=40.0, help="seconds to watch the slow")
    args = parser.parse_args()
    port = free_port()
    revision = subprocess.run(
        ["git", "-C", str(args.tree), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"serving {args.tree} ({revision or 'unknown revision'}) on port {port}")
    with server(args.tree.resolve(), port) as url:
        asyncio.run(attack(url, port, args))


if __name__ == "__main__":
    main()
