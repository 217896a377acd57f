from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.storage import keys as storage_keys
from plugins.information.tables import items

BASE = "/api/v1/information"


async def found(client, **params: str) -> list[str]:
    response = await client.get(BASE, params=params)
    assert response.status == 200, await response.text()
    return [item["id"] for item in (await response.json())["items"]]


async def test_search_finds_an_item_by_a_word_in_its_body(client, publish) -> None:
    target = await publish(client, body="The municipal greenhouse opens to visitors in spring.")
    await publish(client, body="Tram line closed for maintenance.")
    assert await found(client, q="greenhouse") == [target["id"]]


async def test_search_finds_an_item_by_a_word_only_in_its_translation(client, publish) -> None:
    target = await publish(
        client,
        translations=[
            {"language": "kk", "title": "Жол жөндеу", "body": "Абай даңғылында асфальт төселеді."}
        ],
    )
    await publish(client, body="Nothing in Kazakh here.")
    assert await found(client, q="асфальт") == [target["id"]]


async def test_search_ignores_case_in_kazakh_and_russian(client, publish) -> None:
    kazakh = await publish(
        client, language="kk", title="Мектепке қабылдау", body="Бірінші сыныпқа қабылдау басталды."
    )
    russian = await publish(
        client, language="ru", title="Приём в школу", body="Начался приём заявлений в первый класс."
    )
    assert await found(client, q="МЕКТЕПКЕ") == [kazakh["id"]]
    assert await found(client, q="ЗАЯВЛЕНИЙ") == [russian["id"]]


async def test_search_needs_every_word_of_the_query(client, publish) -> None:
    both = await publish(client, body="Bus route twelve now reaches the airport.")
    await publish(client, body="Bus route seven is unchanged.")
    assert await found(client, q="bus airport") == [both["id"]]


async def test_search_ranks_a_match_in_the_title_first(client, publish) -> None:
    in_title = await publish(client, title="Library hours", body="Open from nine to six daily.")
    await publish(client, title="Weekend notice", body="The library opens on Sundays too.")
    results = await found(client, q="library")
    assert len(results) == 2
    assert results[0] == in_title["id"]


async def test_search_combines_with_the_filters(client, publish) -> None:
    await publish(client, "almaty-akimat", body="Parking fees change in March.")
    astana = await publish(client, "astana-akimat", body="Parking fees change in April.")
    assert await found(client, q="parking", agency="astana-akimat") == [astana["id"]]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"parking',
        "*",
        "park*",
        "AND",
        "parking AND",
        "(",
        "(parking",
        "parking)",
        "NEAR(a b)",
        "title:parking",
        "-parking",
        "^parking",
        "a OR",
        "NOT",
        "'",
        ":",
        "{}",
    ],
)
async def test_search_syntax_characters_are_words_or_nothing_never_an_error(
    client, query: str, publish
) -> None:
    parking = await publish(client, body="Parking fees change in March.")
    results = await found(client, q=query)
    assert results in ([], [parking["id"]])


async def test_a_query_word_that_looks_like_an_operator_is_searched_as_a_word(
    client, publish
) -> None:
    with_and = await publish(client, body="Schools and kindergartens close early.")
    await publish(client, body="Schools close early.")
    assert await found(client, q="AND") == [with_and["id"]]


async def test_a_query_of_punctuation_only_finds_nothing(client, publish) -> None:
    await publish(client)
    assert await found(client, q="((( ***") == []


async def test_a_blank_query_lists_everything(client, publish) -> None:
    first = await publish(client)
    second = await publish(client)
    assert await found(client, q="  ") == [second["id"], first["id"]]


async def test_search_results_page_with_a_cursor(client, publish) -> None:
    ids = {
        (await publish(client, body=f"Fountain number {n} is repaired."))["id"] for n in range(3)
    }
    first = await (await client.get(BASE, params={"q": "fountain", "limit": "2"})).json()
    assert len(first["items"]) == 2
    second = await (
        await client.get(
            BASE, params={"q": "fountain", "limit": "2", "cursor": first["next_cursor"]}
        )
    ).json()
    assert second["next_cursor"] is None
    assert {item["id"] for item in first["items"] + second["items"]} == ids


async def test_a_list_cursor_is_refused_by_a_search(client, publish) -> None:
    for _ in range(2):
        await publish(client)
    page = await (await client.get(BASE, params={"limit": "1"})).json()
    response = await client.get(BASE, params={"q": "road", "cursor": page["next_cursor"]})
    assert response.status == 400


async def test_the_index_follows_a_changed_or_removed_item(client, publish) -> None:
    changed = await publish(client, body="The skating rink opens in December.")
    removed = await publish(client, body="The skating rink closes in March.")

    async def edit(conn) -> None:
        await conn.execute(
            sa.update(items).where(items.c.id == changed["id"]).values(body="Ski lift opens.")
        )
        await conn.execute(sa.delete(items).where(items.c.id == removed["id"]))

    await client.app[storage_keys.WRITER].submit(edit)
    assert await found(client, q="skating") == []
    assert await found(client, q="ski lift") == [changed["id"]]
