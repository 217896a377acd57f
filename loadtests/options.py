"""The command-line options that more than one load tool takes, each defined here once.

A tool's parser calls the functions for the options it takes, so that the same flag means the
same thing, with the same type and help, wherever it appears. Where a tool needs another default
(a shorter window, a server of its own), the default is the one argument it passes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# The flash crowd: nine reads for each signature, citizens who close the tab after two seconds.
DEFAULT_MIX = "read=90,sign=10"
DEFAULT_GIVE_UP = 2.0


def comma_separated(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def cpu_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


# ---------------------------------------------------------------------------------------------
# The open-loop generator's crowd (loadtests.flood and the benchmarks built on it)


def add_mix(parser: argparse.ArgumentParser) -> None:
    text = "name=weight,...: read, sign, list, hello or METHOD:/path"
    parser.add_argument("--mix", default=DEFAULT_MIX, help=text)


def add_give_up(parser: argparse.ArgumentParser) -> None:
    text = "seconds after its intended time that a request is abandoned"
    parser.add_argument("--give-up", type=float, default=DEFAULT_GIVE_UP, help=text)


def add_clients(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=2048, help="distinct client addresses")


def add_requests_per_connection(parser: argparse.ArgumentParser) -> None:
    text = "a citizen's connection closes after this many requests (0: keep-alive forever)"
    parser.add_argument("--requests-per-connection", type=int, default=3, help=text)


def add_crowd_arguments(parser: argparse.ArgumentParser) -> None:
    """What the crowd asks for, how long it waits, and how it connects."""
    add_mix(parser)
    add_give_up(parser)
    add_clients(parser)
    add_requests_per_connection(parser)


def add_generator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--generator-processes",
        type=int,
        default=1,
        help="generator processes; more than one only when 10x capacity is beyond one's ceiling",
    )
    parser.add_argument(
        "--generator-cpus",
        type=cpu_list,
        default=[1],
        help="cores the generator processes are pinned to, in turn (e.g. 1,0)",
    )


def add_cpu_cap(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cpu-cap", type=float, default=0.2, help="the server's budget, a share of one core"
    )


# ---------------------------------------------------------------------------------------------
# Measurement windows and rounds


def add_duration(
    parser: argparse.ArgumentParser, default: float, help: str = "measured seconds"
) -> None:
    parser.add_argument("--duration", type=float, default=default, help=help)


def add_warmup(parser: argparse.ArgumentParser, default: float = 2.0) -> None:
    parser.add_argument("--warmup", type=float, default=default, help="warm-up seconds")


def add_rounds(parser: argparse.ArgumentParser, default: int = 15) -> None:
    text = "interleaved rounds, so that a noisy neighbour slows every candidate alike"
    parser.add_argument("--rounds", type=int, default=default, help=text)


def add_number(
    parser: argparse.ArgumentParser, default: int = 20_000, help: str = "calls per round"
) -> None:
    parser.add_argument("--number", type=int, default=default, help=help)


# ---------------------------------------------------------------------------------------------
# What is measured: a server, a Redis, a source tree, instances


def add_server_url(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--url`` of the server under test; required when there is no default."""
    parser.add_argument(
        "--url", default=default, required=default is None, help="http://127.0.0.1:PORT"
    )


def add_redis_url(
    parser: argparse.ArgumentParser, default: str | None = None, help: str | None = None
) -> None:
    parser.add_argument("--redis-url", default=default, help=help)


def add_tree(parser: argparse.ArgumentParser, default: Path) -> None:
    """``--tree``: the source tree whose code the server runs."""
    parser.add_argument("--tree", type=Path, default=default, help="the code to serve")


def add_trees(parser: argparse.ArgumentParser) -> None:
    """``--tree`` given once per source tree to compare, each served from its own .venv."""
    parser.add_argument("--tree", type=Path, action="append", required=True)


def parse_instance_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--instances {text!r}: expected e.g. 1,2") from None
    if not counts or any(n < 1 or n > 8 for n in counts):
        raise argparse.ArgumentTypeError(f"--instances {text!r}: counts from 1 to 8")
    return counts


def add_instance_counts(parser: argparse.ArgumentParser) -> None:
    """``--instances 1,2``: instance counts to measure in turn."""
    text = "instance counts to measure in turn on the shared database, e.g. 1,2"
    parser.add_argument("--instances", type=parse_instance_counts, default=[1], help=text)


def add_instance_count(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--instances N``: how many instances one topology runs."""
    parser.add_argument("--instances", type=int, default=2, choices=(1, 2), help=help)


def add_repeat(parser: argparse.ArgumentParser, default: int, help: str) -> None:
    """``--repeat N``: measurements repeated, interleaved with what they are compared to."""
    parser.add_argument("--repeat", type=int, default=default, help=help)
