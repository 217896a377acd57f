from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.host.app import create_app
from core.settings import SettingsError
from core.storage import keys as storage_keys
from plugins.petitions.tables import petitions
from tests.support.consultations import BASE
from tests.support.identities import citizen, moderator
from tests.support.petitions import PETITION

SPAM = "Buy CHEAP pills now, the best offer in town for everyone who reads this petition."
REASON = "the text contains content that is not allowed"


async def _client(make_client, database_url, **patterns):
    return await make_client(
        database_url,
        plugins={"enabled": ["plugins.pattern_moderation"]},
        pattern_moderation=patterns,
    )


async def test_a_reject_pattern_refuses_a_petition_with_the_reason(make_client, database_url):
    client = await _client(make_client, database_url, reject_patterns=[r"cheap\s+pills"])
    response = await client.post(
        "/api/v1/petitions",
        json={**PETITION, "text": SPAM},
        headers=citizen(1),
    )
    assert response.status == 422
    assert (await response.json())["errors"] == [{"field": "text", "message": REASON}]


async def test_a_reject_pattern_refuses_a_consultation_comment_with_the_reason(
    make_client, database_url, comment, open_consultation
):
    client = await _client(make_client, database_url, reject_patterns=[r"cheap\s+pills"])
    consultation = await open_consultation(client)
    response = await comment(client, consultation["id"], text=SPAM)
    assert response.status == 422
    assert (await response.json())["errors"] == [{"field": "text", "message": REASON}]
    listed = await (await client.get(f"{BASE}/{consultation['id']}/comments")).json()
    assert listed["items"] == []


async def test_the_reject_reason_comes_from_config(
    make_client, database_url, comment, open_consultation
):
    client = await _client(
        make_client, database_url, reject_patterns=["pills"], reject_reason="no advertising"
    )
    consultation = await open_consultation(client)
    response = await comment(client, consultation["id"], text=SPAM)
    assert (await response.json())["errors"] == [{"field": "text", "message": "no advertising"}]


async def test_a_flag_pattern_lets_a_comment_through_flagged(
    make_client, database_url, comment, open_consultation
):
    client = await _client(make_client, database_url, flag_patterns=["https?://"])
    consultation = await open_consultation(client)
    flagged = await comment(client, consultation["id"], 1, text="See HTTPS://example.kz")
    plain = await comment(client, consultation["id"], 2, text="No links here.")
    assert (flagged.status, plain.status) == (201, 201)
    listed = await (
        await client.get(
            f"{BASE}/{consultation['id']}/comments",
            params={"include_hidden": "true"},
            headers=moderator(),
        )
    ).json()
    assert [(c["text"], c["flagged"]) for c in listed["items"]] == [
        ("See HTTPS://example.kz", True),
        ("No links here.", False),
    ]


async def test_a_flag_pattern_lets_a_petition_through_flagged(
    make_client, database_url, file_petition
):
    client = await _client(make_client, database_url, flag_patterns=["offer"])
    petition = await file_petition(client, text=SPAM)
    async with client.app[storage_keys.DATABASE].read() as conn:
        flagged = await conn.scalar(
            sa.select(petitions.c.flagged).where(petitions.c.id == petition["id"])
        )
    assert flagged is True


async def test_reject_beats_flag(make_client, database_url, comment, open_consultation):
    client = await _client(
        make_client, database_url, reject_patterns=["pills"], flag_patterns=["offer"]
    )
    consultation = await open_consultation(client)
    assert (await comment(client, consultation["id"], text=SPAM)).status == 422


async def test_without_the_plugin_the_same_text_passes(
    make_client, database_url, comment, file_petition, open_consultation
):
    client = await make_client(database_url)
    petition = await file_petition(client, text=SPAM)
    consultation = await open_consultation(client)
    response = await comment(client, consultation["id"], text=SPAM)
    assert petition["status"] == "moderation"
    assert response.status == 201


async def test_each_app_keeps_its_own_patterns(
    make_client, database_url, comment, open_consultation
):
    strict = await _client(make_client, database_url, reject_patterns=["pills"])
    lenient = await _client(make_client, database_url, reject_patterns=["casino"])
    strict_consultation = await open_consultation(strict)
    lenient_consultation = await open_consultation(lenient)
    assert (await comment(strict, strict_consultation["id"], text=SPAM)).status == 422
    assert (await comment(lenient, lenient_consultation["id"], text=SPAM)).status == 201


@pytest.mark.parametrize("setting", ["reject_patterns", "flag_patterns"])
async def test_an_invalid_regex_fails_at_app_creation_naming_the_setting(
    make_client, database_url, setting
):
    with pytest.raises(SettingsError, match=rf"pattern_moderation\.{setting}: .*'\(unclosed'"):
        await _client(make_client, database_url, **{setting: ["fine", "(unclosed"]})


async def test_a_petition_touching_a_listed_subject_is_flagged_with_its_code(
    make_client, database_url, file_petition
):
    client = await _client(
        make_client,
        database_url,
        subject_patterns={"referendums": ["референдум", r"\breferendum"]},
    )

    flagged = await file_petition(
        client, text="We ask for a national referendum on the new tax for every household here."
    )
    plain = await file_petition(client)

    assert flagged["status"] == "moderation"
    assert flagged["moderation_flag"] == "subject: referendums"
    assert plain["moderation_flag"] is None
    async with client.app[storage_keys.DATABASE].read() as conn:
        rows = dict((await conn.execute(sa.select(petitions.c.id, petitions.c.flagged))).all())
    assert rows == {flagged["id"]: True, plain["id"]: False}


async def test_subject_patterns_flag_petitions_only(
    make_client, database_url, comment, open_consultation
):
    client = await _client(make_client, database_url, subject_patterns={"elections": ["election"]})
    consultation = await open_consultation(client)

    response = await comment(client, consultation["id"], text="The election of a council is fine.")

    assert response.status == 201


async def test_an_invalid_subject_pattern_stops_the_server_naming_it(make_settings):
    settings = make_settings(
        plugins={"enabled": ["plugins.pattern_moderation"]},
        pattern_moderation={"subject_patterns": {"elections": ["(unclosed"]}},
    )
    with pytest.raises(
        SettingsError, match=r"pattern_moderation\.subject_patterns: .*elections: '\(unclosed'"
    ):
        create_app(settings)
