"""A content-moderation plugin judges a petition's texts before it is stored."""

from __future__ import annotations

from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.moderation import ModerationResult, TextSubmission, Verdict
from tests.support.identities import citizen, moderator
from tests.support.petitions import BASE, PETITION
from tests.support.problems import error_fields, problem


class WordFilter:
    """Rejects texts with "spam", flags texts with "maybe", and remembers what it was shown."""

    def __init__(self) -> None:
        self.seen: list[TextSubmission] = []

    @hookimpl
    def qatysu_moderate_text(self, submission: TextSubmission) -> ModerationResult:
        """Judge by two words."""
        self.seen.append(submission)
        if "spam" in submission.text:
            return ModerationResult(verdict=Verdict.REJECT, reason="looks like spam")
        if "maybe" in submission.text:
            return ModerationResult(verdict=Verdict.FLAG, reason="needs a look")
        return ModerationResult(verdict=Verdict.ALLOW)


async def test_a_text_a_moderation_plugin_rejects_is_422_naming_the_field(
    make_client, database_url
) -> None:
    plugin = WordFilter()
    client = await make_client(database_url, extra_plugins=(plugin,))

    response = await client.post(
        BASE, json={**PETITION, "title": "Buy cheap spam here"}, headers=citizen(1)
    )

    body = await problem(response, 422)
    assert error_fields(body) == ["title"]
    assert body["errors"][0]["message"] == "looks like spam"
    listed = await client.get(BASE, params={"status": "moderation"}, headers=moderator())
    assert (await listed.json())["items"] == []


async def test_a_text_a_moderation_plugin_flags_is_stored_flagged(
    make_client, database_url, stored_petition
) -> None:
    plugin = WordFilter()
    client = await make_client(database_url, extra_plugins=(plugin,))

    flagged = await client.post(
        BASE, json={**PETITION, "text": PETITION["text"] + " maybe"}, headers=citizen(1)
    )
    clean = await client.post(BASE, json=PETITION, headers=citizen(1))

    assert (flagged.status, clean.status) == (201, 201)
    assert (await stored_petition(client, (await flagged.json())["id"])).flagged is True
    assert (await stored_petition(client, (await clean.json())["id"])).flagged is False
    assert [(s.channel, s.field) for s in plugin.seen] == [
        ("petitions", "title"),
        ("petitions", "text"),
    ] * 2
