"""The lane-cost benchmark times every variant on every head, each of which the lane answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.lane_cost import main


def test_each_variant_answers_and_is_timed_for_each_head(
    capsys: pytest.CaptureFixture[str],
) -> None:
    this_lane = Path(__file__).parents[2] / "core" / "http" / "fastlane.py"
    main(["--rounds", "1", "--number", "2", "--against", str(this_lane)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" head")[0] for line in lines if not line.startswith(" ")] == [
        "wrk",
        "browser",
    ]
    timed = [line for line in lines if line.startswith("  ")]
    assert len(timed) == 6
    assert all(float(line.rsplit(": ", 1)[1].split()[0]) > 0 for line in timed)
