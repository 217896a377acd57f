"""Petition thresholds by an agency's level and kind: a fixed number, a share of the region's
population, or, for a small unit, a share of the unit's own population."""

from __future__ import annotations

from typing import Any

import pytest

from core.host.app import create_app
from core.settings import SettingsError, build_settings, validate_section
from plugins.kazakhstan.settings import SECTION, KazakhstanSettings, ThresholdRule

NAMES = {"kk": "Әкімдік", "ru": "Акимат", "en": "Akimat"}
SOURCE = "a test figure"
# Units under 50,000 people: 5% of the population for an akimat, 10% for a maslikhat.
SMALL_UNITS = {
    "republic": {"signatures": 50_000, "source": SOURCE},
    "district.akimat": {
        "signatures": 2_500,
        "small_unit_below": 50_000,
        "small_unit_percent": 5.0,
        "source": SOURCE,
    },
    "district.maslikhat": {
        "signatures": 5_000,
        "small_unit_below": 50_000,
        "small_unit_percent": 10.0,
        "source": SOURCE,
    },
}
REGIONS = {"abai-region": {"names": NAMES, "population": 600_000, "population_source": SOURCE}}


def district(kind: str, population: int | None) -> dict[str, Any]:
    agency: dict[str, Any] = {
        "names": NAMES,
        "level": "district",
        "kind": kind,
        "region": "abai-region",
    }
    if population is not None:
        agency |= {"population": population, "population_source": SOURCE}
    return agency


def settle(section: dict[str, Any]) -> KazakhstanSettings:
    """The ``[kazakhstan]`` section validated as the plugin host validates it."""
    return validate_section(SECTION, KazakhstanSettings, build_settings({SECTION: section}))


def threshold(kind: str, population: int) -> int:
    settings = settle(
        {
            "regions": REGIONS,
            "agencies": {"unit": district(kind, population)},
            "thresholds": SMALL_UNITS,
        }
    )
    rule = settings.threshold_rule(settings.agencies["unit"])
    assert rule is not None
    return rule.signatures_needed(600_000, population)


@pytest.mark.parametrize(
    ("kind", "population", "expected"),
    [
        ("akimat", 30_000, 1_500),
        ("maslikhat", 30_000, 3_000),
        # 5% of 20,001 is 1,000.05: "not less than" rounds up.
        ("akimat", 20_001, 1_001),
        ("maslikhat", 20_001, 2_001),
        ("akimat", 49_999, 2_500),
        ("maslikhat", 49_999, 5_000),
        # From 50,000 people the fixed figures apply.
        ("akimat", 50_000, 2_500),
        ("maslikhat", 50_000, 5_000),
        ("akimat", 400_000, 2_500),
        ("maslikhat", 400_000, 5_000),
    ],
)
def test_a_small_unit_needs_a_share_of_its_own_population(
    kind: str, population: int, expected: int
) -> None:
    assert threshold(kind, population) == expected


def test_a_unit_whose_rule_has_a_small_unit_clause_must_give_its_population() -> None:
    section = {
        "regions": REGIONS,
        "agencies": {"unit": district("akimat", None)},
        "thresholds": SMALL_UNITS,
    }

    with pytest.raises(SettingsError) as caught:
        settle(section)

    assert str(caught.value) == (
        "invalid settings: kazakhstan: Value error, agencies.unit.population: its threshold "
        "depends on the population of the unit it serves (under 50000: 5%); give population "
        "and population_source"
    )


def test_a_unit_population_needs_its_source() -> None:
    agency = {**district("akimat", None), "population": 30_000}

    with pytest.raises(SettingsError, match=r"population and population_source go together"):
        settle({"regions": REGIONS, "agencies": {"unit": agency}})


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"signatures": 2_500, "small_unit_below": 50_000, "source": SOURCE},
            "small_unit_below and small_unit_percent go together",
        ),
        (
            {
                "population_percent": 1.0,
                "small_unit_below": 50_000,
                "small_unit_percent": 5.0,
                "source": SOURCE,
            },
            "a small-unit clause refines a fixed number of signatures",
        ),
        (
            {"signatures": 10, "population_percent": 1.0, "source": SOURCE},
            "a threshold gives either signatures or population_percent",
        ),
    ],
)
def test_a_malformed_rule_is_refused_saying_why(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ThresholdRule.model_validate(rule)


async def test_a_petition_to_a_small_unit_needs_its_share_of_the_unit(
    make_client: Any, file_petition: Any
) -> None:
    client = await make_client(
        kazakhstan={
            "regions": REGIONS,
            "agencies": {
                "small-akimat": district("akimat", 30_000),
                "small-maslikhat": district("maslikhat", 30_000),
            },
            "thresholds": SMALL_UNITS,
        }
    )

    akimat = await file_petition(client, addressee="small-akimat")
    maslikhat = await file_petition(client, addressee="small-maslikhat")

    assert (akimat["threshold"], maslikhat["threshold"]) == (1_500, 3_000)


def test_a_registered_agency_without_a_threshold_rule_stops_the_server(make_settings) -> None:
    rules = {"republic": {"signatures": 10, "source": "a test figure"}}

    with pytest.raises(SettingsError, match=r"no rule for agency 'almaty-akimat'"):
        create_app(make_settings(kazakhstan={"thresholds": rules}))


def test_a_threshold_rule_gives_signatures_or_a_percentage_not_both(make_settings) -> None:
    both = {"republic": {"signatures": 10, "population_percent": 1.0, "source": "a test"}}

    with pytest.raises(SettingsError, match=r"either signatures or population_percent"):
        create_app(make_settings(kazakhstan={"thresholds": both}))
