"""The rules register: every statutory figure in config/default.toml carries its source, and
says whether it was verified."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from core.identity.jurisdiction import Term
from plugins.consultations.settings import ConsultationSettings
from plugins.information.settings import InformationSettings
from plugins.kazakhstan.settings import KazakhstanSettings
from plugins.petitions.settings import PetitionSettings
from tests.support.services import REPO_ROOT

CONFIG = tomllib.loads((REPO_ROOT / "config" / "default.toml").read_text())


def _statutory_sources() -> dict[str, str]:
    """Each statutory figure of the shipped config, by its setting, with its source line."""
    petitions = PetitionSettings.model_validate(CONFIG["petitions"])
    information = InformationSettings.model_validate(CONFIG["information"])
    consultations = ConsultationSettings.model_validate(CONFIG["consultations"])
    kazakhstan = KazakhstanSettings.model_validate(CONFIG["kazakhstan"])
    sources = {
        f"kazakhstan.thresholds.{key}": rule.source for key, rule in kazakhstan.thresholds.items()
    }
    sources |= {
        f"petitions.response_terms.{key}": term.source
        for key, term in petitions.response_terms.items()
    }
    sources |= {
        "petitions.moderation_term": petitions.moderation_term.source,
        "petitions.co_signer_minimum": petitions.co_signer_term.source,
        "petitions.co_signer_term": petitions.co_signer_term.source,
        "petitions.collection_term": petitions.collection_term.source,
        "information.answer_term": information.answer_term.source,
        "information.extension": information.extension.source,
        "consultations.min_discussion_days": consultations.min_discussion_source,
        "consultations.public_service_discussion": consultations.public_service_discussion.source,
        "kazakhstan.calendar.holidays": kazakhstan.calendar.holidays_source,
        "kazakhstan.calendar.working_days": kazakhstan.calendar.working_days_source,
    }
    sources |= {
        f"kazakhstan.regions.{code}.population": region.population_source
        for code, region in kazakhstan.regions.items()
    }
    return sources


SOURCES = _statutory_sources()


@pytest.mark.parametrize("setting", sorted(SOURCES))
def test_every_statutory_figure_has_a_source_that_says_whether_it_was_verified(
    setting: str,
) -> None:
    source = SOURCES[setting]

    assert "built-in default" not in source, f"{setting} has no source in config/default.toml"
    assert "(verify" in source or "verified against" in source.lower(), (
        f"{setting}: say what it was verified against, or (verify) with what was found"
    )
    assert len(source) > 40, f"{setting}: a source names the law or text and what was checked"


def test_the_figures_no_text_confirmed_stay_marked_for_verification() -> None:
    unverified = {name for name, source in SOURCES.items() if "(verify)" in source}

    # The petitions law's text and the Open NPA rules were not reached.
    assert {
        "kazakhstan.thresholds.republic",
        "petitions.moderation_term",
        "petitions.collection_term",
        "consultations.min_discussion_days",
    } <= unverified
    # A review of official statements confirmed these (АППК art. 76; the petitions Rules).
    assert {
        "information.answer_term",
        "information.extension",
        "petitions.co_signer_term",
    }.isdisjoint(unverified)


def test_a_term_reads_days_unit_and_source() -> None:
    term = Term.model_validate({"days": 15, "unit": "calendar", "source": "a law"})

    assert (term.days, term.unit, term.source) == (15, "calendar", "a law")
    with pytest.raises(ValueError, match="extension_days"):
        Term.model_validate({"days": 15, "extension_days": 5, "source": "a law"})
    with pytest.raises(ValueError, match="source"):
        Term.model_validate({"days": 15})
    with pytest.raises(ValueError, match="unit"):
        Term.model_validate({"days": 15, "unit": "fortnights", "source": "a law"})


def test_the_shipped_holidays_cover_2026_and_2027() -> None:
    holidays: list[Any] = CONFIG["kazakhstan"]["calendar"]["holidays"]

    assert {day.year for day in holidays} == {2026, 2027}
    assert all(day.weekday() < 5 for day in holidays), "a day off on a weekend changes nothing"
