"""The statutory rejection reasons: labelled in three languages, published in the API, and dated:
a rejection cites only a ground in force on its day."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from plugins.petitions.reasons import (
    GROUNDS,
    LABELS,
    Ground,
    RejectionReason,
    described,
    in_force,
    labels,
)
from plugins.petitions.state import STATE
from tests.support.problems import problem


def test_every_reason_code_has_a_label_in_each_language() -> None:
    assert set(LABELS) == set(RejectionReason)
    for reason, texts in LABELS.items():
        assert set(texts) == {"kk", "ru", "en"}, reason
        assert all(text.strip() for text in texts.values()), reason


def test_a_stored_code_gets_its_labels_and_an_unknown_one_none() -> None:
    assert labels("elections") == {"kk": "Сайлау", "ru": "Выборы", "en": "Elections"}
    assert labels(None) is None
    assert labels("no-longer-a-ground") is None


async def test_openapi_lists_the_rejection_reason_codes_and_the_petition_shows_them(
    client: Any,
) -> None:
    document = await (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]

    decision = schemas["ModerationDecision"]["properties"]["reason_code"]
    petition = schemas["Petition"]["properties"]

    assert decision["anyOf"] == [
        {"$ref": "#/components/schemas/RejectionReason"},
        {"type": "null"},
    ]
    assert schemas["RejectionReason"]["enum"] == [reason.value for reason in RejectionReason]
    assert "referendums: Referendums" in decision["description"]
    assert {"moderation_reason_code", "moderation_reason_labels", "moderation_flag"} <= set(
        petition
    )


# --- dated grounds -------------------------------------------------------------------------

ADDED_IN_2025 = {
    "public_morality",
    "defamation",
    "ethnic_and_religious_harmony",
    "pardon",
    "war_violence_extremism_propaganda",
    "narcotics_promotion",
}


def test_every_ground_names_its_act_and_source_and_only_the_2025_ones_lack_a_day() -> None:
    assert set(GROUNDS) == set(RejectionReason)
    for reason, ground in GROUNDS.items():
        assert ground.act, reason
        assert "checked 2026-12-07" in ground.source, reason
    unconfirmed = {reason.value for reason, ground in GROUNDS.items() if ground.in_force is None}
    assert unconfirmed == ADDED_IN_2025
    assert GROUNDS[RejectionReason.ELECTIONS].in_force == dt.date(2024, 4, 4)


def test_a_ground_is_citable_from_the_day_it_took_force() -> None:
    assert not in_force(RejectionReason.ELECTIONS, dt.date(2024, 4, 3))
    assert in_force(RejectionReason.ELECTIONS, dt.date(2024, 4, 4))


def test_a_ground_not_confirmed_in_force_is_never_citable() -> None:
    assert not in_force(RejectionReason.PUBLIC_MORALITY, dt.date(2100, 1, 1))


def test_the_api_description_marks_the_grounds_not_in_force() -> None:
    assert "pardon: Pardon (not confirmed in force; cannot be cited)" in described()
    assert "elections: Elections;" in described()


@pytest.mark.parametrize("code", sorted(ADDED_IN_2025))
async def test_a_rejection_citing_a_ground_not_confirmed_in_force_is_refused(
    client: Any, code: str, file_petition: Any, moderate: Any, read_back: Any
) -> None:
    petition = await file_petition(client)

    body = await problem(await moderate(client, petition["id"], "reject", None, code), 422)

    today = dt.datetime.now(client.app[STATE].calendar.timezone).date().isoformat()
    assert body["type"] == "/problems/validation"
    assert body["errors"] == [
        {"field": "reason_code", "message": f"the ground {code} is not in force on {today}"}
    ]
    assert (await read_back(client, petition["id"]))["status"] == "moderation"


@pytest.mark.parametrize(("days_ahead", "status"), [(1, 422), (0, 200)])
async def test_a_rejection_may_cite_a_ground_only_from_its_first_day_in_force(
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
    days_ahead: int,
    status: int,
    file_petition: Any,
    moderate: Any,
) -> None:
    today = dt.datetime.now(client.app[STATE].calendar.timezone).date()
    starts = today + dt.timedelta(days=days_ahead)
    monkeypatch.setitem(
        GROUNDS, RejectionReason.ELECTIONS, Ground(act="a test act", in_force=starts, source="")
    )
    petition = await file_petition(client)

    response = await moderate(client, petition["id"], "reject", None, "elections")

    assert response.status == status
