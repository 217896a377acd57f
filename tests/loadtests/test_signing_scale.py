"""The pieces of ``bench signing --database-url --instances`` that need no servers."""

from __future__ import annotations

import argparse

import pytest

from loadtests.bench import build_parser
from loadtests.options import parse_instance_counts
from loadtests.signing_scale import parse_batch_sizes, scaled_topology

METRICS = """\
# HELP qatysu_writer_batch_size Writes committed in one transaction.
# TYPE qatysu_writer_batch_size histogram
qatysu_writer_batch_size_bucket{le="1.0"} 2.0
qatysu_writer_batch_size_bucket{le="2.0"} 2.0
qatysu_writer_batch_size_bucket{le="50.0"} 5.0
qatysu_writer_batch_size_bucket{le="+Inf"} 6.0
qatysu_writer_batch_size_count 6.0
qatysu_writer_batch_size_sum 190.0
"""


def test_instance_counts_are_a_comma_separated_list() -> None:
    assert parse_instance_counts("1,2") == [1, 2]


@pytest.mark.parametrize("text", ["", "two", "0", "1,9"])
def test_bad_instance_counts_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--instances"):
        parse_instance_counts(text)


def test_batch_sizes_come_from_the_writer_histogram() -> None:
    sizes = parse_batch_sizes(METRICS)

    assert (sizes.commits, sizes.writes) == (6, 190)
    assert sizes.mean == pytest.approx(190 / 6)
    assert sizes.describe() == "6 commits, 190 writes, mean 31.7 (<=1.0: 2; <=50.0: 3; <=+Inf: 1)"


def test_no_commits_give_a_mean_of_zero() -> None:
    assert parse_batch_sizes("").mean == 0.0


def test_the_preamble_names_the_shared_topology_only_for_scaled_runs() -> None:
    parser = build_parser()
    single = parser.parse_args(["signing"])
    scaled = parser.parse_args(
        ["signing", "--database-url", "postgresql://x/y", "--instances", "1,2"]
    )

    assert scaled_topology(single) is None
    assert "1 then 2 instance(s)" in (scaled_topology(scaled) or "")
    assert "PostgreSQL" in (scaled_topology(scaled) or "")
