"""Petition text search: every word must match, best match first, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from core.storage.database import Database
from core.storage.migrations import MigrationSet, migrate
from plugins.petitions.search import matching
from plugins.petitions.tables import MIGRATIONS
from tests.support.petitions import BASE, thresholds
from tests.support.problems import problem

# Petition texts have a minimum length; this filler has none of the words searched for.
FILLER = " This sentence makes the text long enough to be filed as a petition."
SEARCH_FIGURES: dict[str, Any] = {
    "co_signer_minimum": 1,
    "default_page_size": 2,
    "max_page_size": 3,
}


@pytest.fixture
async def search_client(make_client: Any, database_url: str) -> Any:
    return await make_client(database_url, kazakhstan=thresholds(1_000), petitions=SEARCH_FIGURES)


@pytest.fixture
def public_petition(approved_petition: Any, sign_by: Any) -> Any:
    async def made(client: Any, title: str, text: str) -> str:
        petition = await approved_petition(client, title=title, text=text + FILLER)
        await sign_by(client, petition["id"], [100])
        petition_id: str = petition["id"]
        return petition_id

    return made


async def ids(client: Any, **params: str) -> list[str]:
    response = await client.get(BASE, params=params)
    assert response.status == 200, await response.text()
    return [item["id"] for item in (await response.json())["items"]]


async def test_search_finds_petitions_with_every_word_title_matches_first(
    search_client: Any, public_petition: Any
) -> None:
    in_text = await public_petition(
        search_client, "Publish the queues", "Every school enrolment queue belongs online."
    )
    in_title = await public_petition(
        search_client, "School enrolment online", "Parents queue overnight for places."
    )
    await public_petition(search_client, "Light the parks", "Parks are dark in winter.")

    assert await ids(search_client, q="school enrolment") == [in_title, in_text]
    assert await ids(search_client, q="school parks") == []


async def test_search_reads_cyrillic_words_and_ignores_query_syntax(
    search_client: Any, public_petition: Any
) -> None:
    kazakh = await public_petition(
        search_client, "Мектепке қабылдау кезегі", "Барлық кезектерді жариялау керек."
    )
    await public_petition(search_client, "Snow clearing", "Clear the pavements too.")

    assert await ids(search_client, q="кезегі") == [kazakh]
    assert await ids(search_client, q='"snow" OR * (NEAR') == []
    assert await ids(search_client, q="\"'*()") == []


async def test_search_pages_walk_every_match_once_with_offset_cursors(
    search_client: Any, public_petition: Any
) -> None:
    made = {
        await public_petition(search_client, f"Budget item {n}", "Publish the budget.")
        for n in range(4)
    }
    first = await search_client.get(BASE, params={"q": "budget"})
    page = await first.json()
    assert len(page["items"]) == 2
    second = await search_client.get(first.links["next"]["url"].path_qs)
    rest = await second.json()
    assert rest["next_cursor"] is None
    assert {item["id"] for item in page["items"] + rest["items"]} == made


async def test_search_keeps_the_other_filters_and_hides_unlisted_petitions(
    search_client: Any, public_petition: Any, file_petition: Any
) -> None:
    listed = await public_petition(search_client, "Budget of Almaty", "Publish it.")
    await file_petition(search_client, title="Budget in moderation", text="Publish it." + FILLER)

    assert await ids(search_client, q="budget") == [listed]
    assert await ids(search_client, q="budget", addressee="almaty-akimat") == []


async def test_a_keyset_cursor_is_refused_by_a_search_and_an_offset_one_by_the_list(
    search_client: Any, public_petition: Any
) -> None:
    for n in range(3):
        await public_petition(search_client, f"Repair roads {n}", "Repair the roads.")
    listed = await (await search_client.get(BASE)).json()
    searched = await (await search_client.get(BASE, params={"q": "roads"})).json()

    wrong = await search_client.get(BASE, params={"q": "roads", "cursor": listed["next_cursor"]})
    assert (await problem(wrong, 400))["type"] == "/problems/bad-request"
    wrong = await search_client.get(BASE, params={"cursor": searched["next_cursor"]})
    assert (await problem(wrong, 400))["type"] == "/problems/bad-request"


async def test_a_query_over_200_characters_is_422(search_client: Any) -> None:
    response = await search_client.get(BASE, params={"q": "a" * 201})
    assert (await problem(response, 422))["type"] == "/problems/validation"


async def test_version_3_indexes_petitions_filed_before_it(database_url: str) -> None:
    database = Database(database_url)
    try:
        await migrate(
            database, [MigrationSet(namespace="petitions", migrations=MIGRATIONS.migrations[:2])]
        )
        async with database.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO petitions (id, title, text, addressee, author_hash, author_name, "
                    "status, flagged, signature_count, threshold, co_signer_minimum, was_public, "
                    "created_at, moderation_due_at) VALUES ('old', 'Old water pipes', 'Replace.', "
                    "'government', 'h', 'A. B.', 'open', false, 1, 10, 1, true, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        up_to_3 = MigrationSet(namespace="petitions", migrations=MIGRATIONS.migrations[:3])
        assert await migrate(database, [up_to_3]) == [
            f"petitions 3: {MIGRATIONS.migrations[2].description}"
        ]
        matches = sa.select(sa.literal_column("petitions.id")).select_from(sa.text("petitions"))
        async with database.read() as conn:
            found = (await conn.execute(matching(matches, conn.dialect.name, ["water"]))).all()
        assert [row[0] for row in found] == ["old"]
    finally:
        await database.dispose()
