"""The statutory rejection reasons: labelled in three languages, and published in the API."""

from __future__ import annotations

from typing import Any

from plugins.petitions.reasons import LABELS, RejectionReason, labels


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
