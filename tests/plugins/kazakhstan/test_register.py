"""The agency register: settings that must agree, the public list, and agency tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from core.settings import SettingsError, build_settings, validate_section
from plugins.kazakhstan.settings import SECTION, KazakhstanSettings
from tests.support.identities import agency, auth, citizen, token
from tests.support.services import REGISTER

NAMES = {"kk": "Әкімдік", "ru": "Акимат", "en": "Akimat"}


def settle(section: dict[str, Any]) -> KazakhstanSettings:
    """The ``[kazakhstan]`` section validated as the plugin host validates it."""
    return validate_section(SECTION, KazakhstanSettings, build_settings({SECTION: section}))


def _register(**agency_fields: Any) -> dict[str, Any]:
    return {
        "regions": {
            "abai-region": {"names": NAMES, "population": 10, "population_source": "a test"}
        },
        "agencies": {
            "an-akimat": {"names": NAMES, "level": "region", "kind": "akimat", **agency_fields}
        },
    }


def test_a_regional_agency_must_name_a_configured_region() -> None:
    with pytest.raises(SettingsError, match=r"agencies\.an-akimat\.region: a region agency needs"):
        settle(_register())
    with pytest.raises(SettingsError, match=r"agencies\.an-akimat\.region: no region 'nowhere'"):
        settle(_register(region="nowhere"))
    assert settle(_register(region="abai-region")).agencies["an-akimat"].level == "region"


def test_an_agency_code_is_lowercase_letters_digits_and_hyphens() -> None:
    layered = {"agencies": {"Bad Code": {"names": NAMES, "level": "republic", "kind": "ministry"}}}
    with pytest.raises(SettingsError, match=r"agencies\.Bad Code: a code is lowercase"):
        settle(layered)


def test_an_agency_of_an_unknown_level_is_refused_naming_the_setting() -> None:
    layered = {"agencies": {"x": {"names": NAMES, "level": "galaxy", "kind": "akimat"}}}
    with pytest.raises(SettingsError, match=r"agencies\.x\.level"):
        settle(layered)


async def test_the_register_is_public_with_names_levels_regions_and_populations(
    client: Any,
) -> None:
    response = await client.get("/api/v1/agencies")

    assert response.status == 200
    assert response.headers["Cache-Control"].startswith("public, max-age=300")
    body = await response.json()
    by_code = {item["code"]: item for item in body["items"]}
    assert set(by_code) == set(REGISTER["kazakhstan"]["agencies"])
    assert by_code["government"] == {
        "code": "government",
        "names": {
            "kk": "Қазақстан Республикасының Үкіметі",
            "ru": "Правительство Республики Казахстан",
            "en": "Government of the Republic of Kazakhstan",
        },
        "level": "republic",
        "kind": "government",
        "region": None,
    }
    almaty = by_code["almaty-akimat"]
    assert (almaty["level"], almaty["kind"]) == ("region", "akimat")
    assert almaty["region"]["code"] == "almaty"
    assert (
        almaty["region"]["population"] == REGISTER["kazakhstan"]["regions"]["almaty"]["population"]
    )
    assert "Bureau of National Statistics" in almaty["region"]["population_source"]


async def test_the_register_answers_304_to_a_client_that_holds_it(client: Any) -> None:
    first = await client.get("/api/v1/agencies")

    again = await client.get("/api/v1/agencies", headers={"If-None-Match": first.headers["ETag"]})

    assert again.status == 304


async def test_the_register_is_described_in_openapi(client: Any) -> None:
    document = await (await client.get("/openapi.json")).json()

    operation = document["paths"]["/api/v1/agencies"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AgencyList"
    }
    level = document["components"]["schemas"]["Agency"]["properties"]["level"]
    assert level["enum"] == ["republic", "region", "city", "district"]


async def test_an_agency_token_outside_the_register_is_refused_on_every_route(
    client: Any,
) -> None:
    for method, path in (("GET", "/api/v1/petitions"), ("GET", "/api/v1/information-requests")):
        response = await client.request(method, path, headers=agency("no-such-agency"))

        assert response.status == 403
        body = await response.json(content_type=None)
        assert body["type"] == "/problems/unregistered-agency"
        assert body["detail"] == "the token's agency 'no-such-agency' is not in the agency register"


async def test_a_registered_agency_token_and_other_roles_pass(client: Any) -> None:
    assert (await client.get("/api/v1/petitions", headers=agency("almaty-akimat"))).status == 200
    assert (await client.get("/api/v1/petitions", headers=citizen(1))).status == 200
    # A citizen's token carrying a stray agency claim is not an agency's: it is not checked.
    stray = auth(token("citizen", "900101300017", agency="no-such-agency"))
    assert (await client.get("/api/v1/petitions", headers=stray)).status == 200


def test_a_transferred_working_day_must_be_on_a_weekend() -> None:
    # 2026-03-11 is a Wednesday.
    with pytest.raises(SettingsError) as caught:
        settle({"calendar": {"working_days": ["2026-03-11"]}})

    assert str(caught.value) == (
        "invalid settings: kazakhstan.calendar: Value error, calendar.working_days: 2026-03-11 "
        "is a Wednesday, not a weekend day; list only weekend days the government made "
        "working days"
    )


def test_a_transferred_working_day_must_not_also_be_a_holiday() -> None:
    # 2026-03-21 is a Saturday.
    section = {"calendar": {"working_days": ["2026-03-21"], "holidays": ["2026-03-21"]}}

    with pytest.raises(SettingsError) as caught:
        settle(section)

    assert str(caught.value) == (
        "invalid settings: kazakhstan.calendar: Value error, calendar.working_days: 2026-03-21 "
        "is also in calendar.holidays"
    )


def test_a_transferred_saturday_is_accepted_against_the_configured_weekend() -> None:
    calendar = settle({"calendar": {"working_days": ["2026-03-21"]}}).calendar
    assert calendar.working_days == (dt.date(2026, 3, 21),)
    # With a six-day week, Saturday is not a weekend day, so it cannot be transferred.
    with pytest.raises(SettingsError, match=r"calendar\.working_days: 2026-03-21 is a Saturday"):
        settle({"calendar": {"working_days": ["2026-03-21"], "weekend": [6]}})
