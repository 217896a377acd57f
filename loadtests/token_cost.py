"""Per-token cost of verifying an HS256 bearer token: the hand-written verifier against PyJWT.

Every citizen request carries a token, and during a signing flood every token is new (each
citizen signs once), so no cache of verified tokens can save this work. Both verifiers check the
same citizen token in interleaved rounds, so that a noisy neighbour slows both alike; the figures
are the median and the spread over the rounds.

    .venv/bin/python -m loadtests.token_cost [--rounds 15] [--number 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from collections.abc import Callable

import jwt

from core.identity.hs256 import verify_hs256
from core.identity.tokens import TokenKeys, TokenVerifier, mint_token
from loadtests.options import add_number, add_rounds
from plugins.kazakhstan.iin import synthetic_iin
from plugins.kazakhstan.jurisdiction import Kazakhstan
from plugins.kazakhstan.settings import KazakhstanSettings

SECRET = b"token-cost-secret-not-for-production-0123456789"
IIN_SECRET = b"token-cost-iin-secret-not-for-production-01234"


def candidates(token: str) -> dict[str, Callable[[], object]]:
    keys = TokenKeys(hs256_secret=SECRET, national_id_secret=IIN_SECRET)
    verifier, verifier_lifetimes = (
        TokenVerifier(keys, Kazakhstan(KazakhstanSettings())),
        keys.lifetimes,
    )
    return {
        "hand-written verify_hs256": lambda: verify_hs256(
            token, SECRET, now=time.time(), leeway=30.0, lifetimes=verifier_lifetimes
        ),
        "PyJWT jwt.decode": lambda: jwt.decode(
            token, SECRET, algorithms=["HS256"], leeway=30.0, options={"require": ["exp", "iat"]}
        ),
        "TokenVerifier.verify (whole identity)": lambda: verifier.verify(token),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_rounds(parser)
    add_number(parser, help="verifications per round")
    args = parser.parse_args()
    token = mint_token(SECRET, role="citizen", sub=synthetic_iin(7), name="Aigerim Sadykova")
    runs = candidates(token)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, call in runs.items():
            samples[name].append(timeit.timeit(call, number=args.number) / args.number * 1e6)
    print(f"per-token cost, {args.rounds} interleaved rounds of {args.number} verifications")
    print(f"{'verifier':<40} {'median µs':>10} {'min':>8} {'max':>8}")
    for name, values in samples.items():
        print(
            f"{name:<40} {statistics.median(values):>10.1f} {min(values):>8.1f} {max(values):>8.1f}"
        )
    hand, py = samples["hand-written verify_hs256"], samples["PyJWT jwt.decode"]
    ratios = sorted(p / h for p, h in zip(py, hand, strict=True))
    print(
        f"PyJWT / hand-written, per round: median {statistics.median(ratios):.1f}x, "
        f"min {ratios[0]:.1f}x, max {ratios[-1]:.1f}x"
    )


if __name__ == "__main__":
    main()
