from __future__ import annotations

from typing import Any

import pytest

from tests.support.identities import agency, citizen, moderator
from tests.support.information import ITEM
from tests.support.metrics import events_emitted

BASE = "/api/v1/information"


async def test_an_agency_publishes_an_item_with_a_translation(client) -> None:
    response = await client.post(
        BASE,
        headers=agency("almaty-akimat"),
        json={
            **ITEM,
            "translations": [
                {
                    "language": "ru",
                    "title": "Ремонт дороги",
                    "body": "Ремонт проспекта Абая начнётся в понедельник.",
                }
            ],
        },
    )
    assert response.status == 201
    item = await response.json()
    assert response.headers["Location"] == f"{BASE}/{item['id']}"
    assert item["agency"] == "almaty-akimat"
    assert (item["title"], item["body"], item["category"], item["language"]) == (
        ITEM["title"],
        ITEM["body"],
        "roads",
        "en",
    )
    assert item["translations"] == [
        {
            "language": "ru",
            "title": "Ремонт дороги",
            "body": "Ремонт проспекта Абая начнётся в понедельник.",
        }
    ]
    assert item["published_at"].endswith("Z")
    assert events_emitted(client.app)["information.published"] == 1


async def test_a_published_item_reads_back_as_it_was_published(client, publish) -> None:
    published = await publish(
        client,
        translations=[{"language": "kk", "title": "Жол жөндеу", "body": "Абай даңғылы жөнделеді."}],
    )
    response = await client.get(f"{BASE}/{published['id']}")
    assert response.status == 200
    assert await response.json() == published


async def test_an_item_read_carries_an_etag_and_answers_304_when_it_matches(
    client, publish
) -> None:
    published = await publish(client)
    first = await client.get(f"{BASE}/{published['id']}")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=60, stale-while-revalidate=5"
    again = await client.get(f"{BASE}/{published['id']}", headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag
    other = await client.get(f"{BASE}/{published['id']}", headers={"If-None-Match": '"stale"'})
    assert other.status == 200


async def test_an_unknown_item_is_404(client) -> None:
    response = await client.get(f"{BASE}/no-such-item")
    assert response.status == 404
    assert (await response.json())["type"] == "/problems/not-found"


async def test_publishing_needs_a_token(client) -> None:
    response = await client.post(BASE, json=ITEM)
    assert response.status == 401


@pytest.mark.parametrize("headers", [citizen(1), moderator()], ids=["citizen", "moderator"])
async def test_only_agencies_publish(client, headers: dict[str, str]) -> None:
    response = await client.post(BASE, json=ITEM, headers=headers)
    assert response.status == 403


INVALID_ITEMS: list[tuple[str, dict[str, Any], str]] = [
    ("bad-language", {**ITEM, "language": "de"}, "language"),
    ("empty-title", {**ITEM, "title": "   "}, "title"),
    ("long-title", {**ITEM, "title": "t" * 301}, "title"),
    ("long-body", {**ITEM, "body": "b" * 50_001}, "body"),
    ("empty-category", {**ITEM, "category": ""}, "category"),
    ("long-category", {**ITEM, "category": "c" * 65}, "category"),
    ("missing-category", {k: v for k, v in ITEM.items() if k != "category"}, "category"),
    ("unknown-field", {**ITEM, "agency": "someone-else"}, "agency"),
    (
        "duplicate-translation",
        {
            **ITEM,
            "translations": [
                {"language": "ru", "title": "Один", "body": "Текст"},
                {"language": "ru", "title": "Два", "body": "Текст"},
            ],
        },
        "translations",
    ),
    (
        "translation-in-main-language",
        {**ITEM, "translations": [{"language": "en", "title": "Again", "body": "Same language"}]},
        "translations",
    ),
    (
        "translation-bad-language",
        {**ITEM, "translations": [{"language": "fr", "title": "Titre", "body": "Texte"}]},
        "translations.0.language",
    ),
    (
        "translation-empty-body",
        {**ITEM, "translations": [{"language": "kk", "title": "Тақырып", "body": ""}]},
        "translations.0.body",
    ),
]


@pytest.mark.parametrize(
    ("body", "field"),
    [(b, f) for _, b, f in INVALID_ITEMS],
    ids=[name for name, _, _ in INVALID_ITEMS],
)
async def test_an_invalid_item_is_422_naming_the_field(
    client, body: dict[str, Any], field: str
) -> None:
    response = await client.post(BASE, json=body, headers=agency())
    assert response.status == 422
    problem = await response.json()
    assert [error["field"] for error in problem["errors"]] == [field]


async def test_the_list_is_newest_first_and_pages_with_a_cursor(client, publish) -> None:
    ids = [(await publish(client, title=f"Notice {n}"))["id"] for n in range(3)]
    first = await (await client.get(BASE, params={"limit": "2"})).json()
    assert [item["id"] for item in first["items"]] == [ids[2], ids[1]]
    second = await (
        await client.get(BASE, params={"limit": "2", "cursor": first["next_cursor"]})
    ).json()
    assert [item["id"] for item in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None


async def test_the_list_filters_by_agency_and_category(client, publish) -> None:
    roads = await publish(client, "almaty-akimat", category="roads")
    await publish(client, "almaty-akimat", category="schools")
    await publish(client, "astana-akimat", category="roads")
    response = await client.get(BASE, params={"agency": "almaty-akimat", "category": "roads"})
    assert [item["id"] for item in (await response.json())["items"]] == [roads["id"]]


async def test_the_language_filter_matches_the_main_language_or_a_translation(
    client, publish
) -> None:
    russian = await publish(client, language="ru", title="Объявление", body="Текст объявления")
    translated = await publish(
        client, translations=[{"language": "ru", "title": "Перевод", "body": "Переведённый текст"}]
    )
    await publish(client, language="kk", title="Хабарландыру", body="Мәтін")
    response = await client.get(BASE, params={"language": "ru"})
    assert [item["id"] for item in (await response.json())["items"]] == [
        translated["id"],
        russian["id"],
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"language": "de"}, "language"),
        ({"limit": "0"}, "limit"),
        ({"q": "x" * 201}, "q"),
        ({"sort": "title"}, "sort"),
    ],
    ids=["language", "limit", "long-q", "unknown-parameter"],
)
async def test_an_invalid_list_query_is_422(client, params: dict[str, str], field: str) -> None:
    response = await client.get(BASE, params=params)
    assert response.status == 422
    assert [error["field"] for error in (await response.json())["errors"]] == [field]


async def test_a_cursor_the_server_did_not_issue_is_400(client) -> None:
    response = await client.get(BASE, params={"cursor": "not-a-cursor"})
    assert response.status == 400


async def test_the_page_size_is_capped_by_the_configured_maximum(
    make_client, database_url: str, publish
) -> None:
    client = await make_client(
        database_url, information={"max_page_size": 2, "default_page_size": 1}
    )
    for n in range(3):
        await publish(client, title=f"Notice {n}")
    default = await (await client.get(BASE)).json()
    assert len(default["items"]) == 1
    capped = await (await client.get(BASE, params={"limit": "100"})).json()
    assert len(capped["items"]) == 2
    assert capped["next_cursor"] is not None
