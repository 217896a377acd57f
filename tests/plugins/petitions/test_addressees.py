"""Addressees come from the jurisdiction's register; each one's threshold follows from its level."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.support.identities import citizen
from tests.support.petitions import BASE, PETITION
from tests.support.problems import error_fields, problem
from tests.support.services import REGISTER


def _population(region: str) -> int:
    population: int = REGISTER["kazakhstan"]["regions"][region]["population"]
    return population


@pytest.mark.parametrize(
    ("addressee", "threshold"),
    [
        ("government", 50_000),
        ("minedu", 50_000),
        ("almaty-akimat", math.ceil(_population("almaty") / 100)),
        ("almaty-maslikhat", math.ceil(_population("almaty") * 2 / 100)),
        ("karaganda-region-akimat", math.ceil(_population("karaganda-region") / 100)),
        ("karaganda-region-maslikhat", math.ceil(_population("karaganda-region") * 2 / 100)),
        ("karaganda-city-akimat", 2_500),
        ("karaganda-city-maslikhat", 5_000),
        ("almaty-bostandyq-akimat", 2_500),
    ],
)
async def test_the_threshold_follows_from_the_addressee_level_and_region(
    client: Any, addressee: str, threshold: int, file_petition
) -> None:
    petition = await file_petition(client, addressee=addressee)

    assert petition["addressee"] == addressee
    assert petition["threshold"] == threshold


async def test_regional_percentages_are_of_the_configured_population(
    make_client, file_petition
) -> None:
    regions = {**REGISTER["kazakhstan"]["regions"]}
    regions["almaty"] = {**regions["almaty"], "population": 1_000_001}
    client = await make_client(kazakhstan={"regions": regions})

    akimat = await file_petition(client, addressee="almaty-akimat")
    maslikhat = await file_petition(client, addressee="almaty-maslikhat")

    # "Not less than 1%" of 1,000,001 residents is 10,001 signatures, not 10,000.
    assert akimat["threshold"] == 10_001
    assert maslikhat["threshold"] == 20_001


@pytest.mark.parametrize("addressee", ["no-such-agency", "maslikhat", "district_akimat"])
async def test_an_addressee_outside_the_register_is_refused(client: Any, addressee: str) -> None:
    response = await client.post(BASE, json={**PETITION, "addressee": addressee}, headers=citizen())

    body = await problem(response, 422)
    assert error_fields(body) == ["addressee"]
    assert "GET /api/v1/agencies" in body["errors"][0]["message"]


async def test_the_removed_addressee_agency_field_is_refused_even_when_it_equals_addressee(
    client: Any,
) -> None:
    response = await client.post(
        BASE,
        json={**PETITION, "addressee": "almaty-akimat", "addressee_agency": "almaty-akimat"},
        headers=citizen(),
    )

    body = await problem(response, 422)
    assert error_fields(body) == ["addressee_agency"]
