from __future__ import annotations

import pytest

from core.plugin_host.priority import Priority, RatePolicy


def test_lower_priority_value_means_more_important() -> None:
    assert sorted(Priority) == [Priority.CRITICAL, Priority.NORMAL, Priority.SHEDDABLE]
    assert [int(p) for p in Priority] == [0, 1, 2]


def test_window_is_the_time_to_refill_the_whole_burst() -> None:
    policy = RatePolicy(name="sign", rate=4.0, burst=10)
    assert policy.window_seconds == 2.5
    assert policy.emission_interval == 0.25


@pytest.mark.parametrize(
    ("name", "rate", "burst", "message"),
    [
        ("", 1.0, 1, "non-empty name"),
        ("caf\u00e9", 1.0, 1, "printable ASCII"),
        ("p", 0.0, 1, "rate"),
        ("p", -1.0, 1, "rate"),
        ("p", float("nan"), 1, "rate"),
        ("p", float("inf"), 1, "rate"),
        ("p", 1.0, 0, "burst"),
    ],
)
def test_invalid_policies_are_rejected(name: str, rate: float, burst: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RatePolicy(name=name, rate=rate, burst=burst)


def test_policy_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        RatePolicy("p", 1.0, 1)  # type: ignore[call-arg]
