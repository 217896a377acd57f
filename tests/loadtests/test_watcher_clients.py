"""The watchers benchmark's file limits and how it spreads watchers over client processes."""

from __future__ import annotations

import resource

from loadtests.watcher_clients import FileLimit, raise_file_limit, split


def test_watchers_are_spread_evenly_over_as_few_processes_as_hold_them() -> None:
    assert split(20_000, 10_000) == [10_000, 10_000]
    assert split(20_001, 10_000) == [6_667, 6_667, 6_667]
    assert split(5, 10_000) == [5]
    assert split(0, 10_000) == []


def test_the_soft_file_limit_is_raised_to_what_is_needed_and_never_lowered() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 10, hard))
        raised = raise_file_limit(soft)
        kept = raise_file_limit(soft - 100)
        assert (raised.soft, raised.enough) == (soft, True)
        assert kept.soft == soft
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_hard_limit_below_the_need_is_said_plainly() -> None:
    short = FileLimit(needed=30_000, soft=20_000, hard=20_000)
    enough = FileLimit(needed=11_000, soft=20_000, hard=20_000)

    assert not short.enough
    assert short.describe("each instance") == (
        "each instance: NEEDS 30000 open files but the hard limit is 20000 (soft now 20000);"
        " raise it (ulimit -Hn, limits.conf, LimitNOFILE=)"
    )
    assert enough.describe("each instance") == (
        "each instance: file limit 20000 (needed 11000, hard 20000)"
    )
