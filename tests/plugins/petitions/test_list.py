"""The petition list: filters, order, cursor pagination and page sizes."""

from __future__ import annotations

from typing import Any

import pytest

from core.wire.paging import encode_cursor
from tests.support.identities import moderator
from tests.support.petitions import BASE, thresholds
from tests.support.problems import problem

# Every approved petition with a signature is public, and none reaches its threshold.
LIST_FIGURES: dict[str, Any] = {
    "co_signer_minimum": 1,
    "default_page_size": 2,
    "max_page_size": 3,
}


@pytest.fixture
def public_petitions(approved_petition: Any, sign_by: Any) -> Any:
    """Public petitions, oldest first, each with the given addressee and signature count."""

    async def created(client: Any, counts: list[tuple[str, int]]) -> list[dict[str, Any]]:
        petitions = []
        for addressee, count in counts:
            petition = await approved_petition(client, addressee=addressee)
            await sign_by(client, petition["id"], range(100, 100 + count))
            petitions.append(petition)
        return petitions

    return created


async def _walk(client: Any, params: dict[str, str]) -> list[list[str]]:
    """Every page of the list, following next_cursor to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = await client.get(BASE, params=query)
        assert response.status == 200, await response.text()
        page = await response.json()
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "the cursor does not advance"


@pytest.fixture
async def list_client(make_client, database_url) -> Any:
    return await make_client(database_url, kazakhstan=thresholds(1_000), petitions=LIST_FIGURES)


async def test_the_list_is_newest_first_by_default(list_client, public_petitions) -> None:
    petitions = await public_petitions(
        list_client, [("government", 1), ("almaty-maslikhat", 2), ("government", 1)]
    )

    page = await (await list_client.get(BASE, params={"limit": "3"})).json()

    assert [item["id"] for item in page["items"]] == [p["id"] for p in reversed(petitions)]
    assert page["next_cursor"] is None


async def test_the_list_sorts_by_signatures_with_ties_broken_by_id(
    list_client, public_petitions
) -> None:
    petitions = await public_petitions(
        list_client,
        [("government", 2), ("almaty-maslikhat", 3), ("government", 1), ("almaty-maslikhat", 2)],
    )
    by_count = sorted(petitions, key=lambda p: p["id"], reverse=True)
    counts = {p["id"]: c for p, c in zip(petitions, [2, 3, 1, 2], strict=True)}
    by_count.sort(key=lambda p: counts[p["id"]], reverse=True)

    pages = await _walk(list_client, {"sort": "signatures", "limit": "3"})

    assert [pid for page in pages for pid in page] == [p["id"] for p in by_count]


@pytest.mark.parametrize("sort", ["created", "signatures"])
async def test_cursor_pagination_walks_every_petition_exactly_once(
    list_client, sort, public_petitions
) -> None:
    petitions = await public_petitions(
        list_client,
        [
            ("government", 1),
            ("almaty-maslikhat", 1),
            ("government", 2),
            ("almaty-bostandyq-akimat", 1),
            ("almaty-maslikhat", 2),
        ],
    )

    pages = await _walk(list_client, {"sort": sort, "limit": "2"})

    assert [len(page) for page in pages] == [2, 2, 1]
    walked = [pid for page in pages for pid in page]
    assert sorted(walked) == sorted(p["id"] for p in petitions)


async def test_the_list_filters_by_addressee_and_status(
    list_client, approved_petition, public_petitions
) -> None:
    government, maslikhat, _ = await public_petitions(
        list_client,
        [
            ("government", 1),
            ("almaty-maslikhat", 1),
            ("government", 1),
        ],
    )
    restricted = await approved_petition(list_client, addressee="almaty-maslikhat")

    by_addressee = await (
        await list_client.get(BASE, params={"addressee": "almaty-maslikhat"})
    ).json()
    public = await (await list_client.get(BASE, params={"status": "public", "limit": "3"})).json()
    nobody = await (await list_client.get(BASE, params={"addressee": "nobody"})).json()
    both = await list_client.get(
        BASE, params={"status": "restricted", "addressee": "almaty-maslikhat"}, headers=moderator()
    )

    assert [item["id"] for item in by_addressee["items"]] == [maslikhat["id"]]
    assert len(public["items"]) == 3
    assert {item["status"] for item in public["items"]} == {"public"}
    assert nobody == {"items": [], "next_cursor": None}
    assert [item["id"] for item in (await both.json())["items"]] == [restricted["id"]]
    assert government["id"] in {item["id"] for item in public["items"]}


async def test_the_list_status_filter_selects_one_listed_status(
    list_client, public_petitions
) -> None:
    await public_petitions(list_client, [("government", 1)])

    awaiting = await (await list_client.get(BASE, params={"status": "awaiting_response"})).json()

    assert awaiting == {"items": [], "next_cursor": None}


async def test_a_limit_above_the_configured_maximum_is_clamped(
    list_client, public_petitions
) -> None:
    await public_petitions(list_client, [("government", 1)] * 5)

    page = await (await list_client.get(BASE, params={"limit": "100"})).json()
    default = await (await list_client.get(BASE)).json()

    assert len(page["items"]) == LIST_FIGURES["max_page_size"]
    assert page["next_cursor"] is not None
    assert len(default["items"]) == LIST_FIGURES["default_page_size"]


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("created", "not a cursor!"),
        ("created", "e30"),  # "{}": JSON, but not the list a cursor holds
        ("created", encode_cursor(["2026-01-01T00:00:00Z"])),
        ("created", encode_cursor([5, "some-id"])),
        ("signatures", encode_cursor(["many", "some-id"])),
        ("signatures", encode_cursor([1, "some-id", "extra"])),
    ],
)
async def test_a_cursor_this_server_did_not_issue_is_400(
    list_client, sort, cursor, public_petitions
) -> None:
    await public_petitions(list_client, [("government", 1)])

    await problem(await list_client.get(BASE, params={"sort": sort, "cursor": cursor}), 400)


async def test_link_headers_name_the_page_itself_and_the_next_until_the_last(
    list_client, public_petitions
) -> None:
    await public_petitions(list_client, [("government", 1)] * 3)
    first = await list_client.get(BASE, params={"sort": "signatures"})
    page = await first.json()
    assert first.links["self"]["url"].path_qs == f"{BASE}?sort=signatures"
    next_url = first.links["next"]["url"]
    assert next_url.path == BASE
    assert dict(next_url.query) == {"sort": "signatures", "cursor": page["next_cursor"]}
    last = await list_client.get(next_url.path_qs)
    assert last.status == 200
    assert len((await last.json())["items"]) == 1
    assert "next" not in last.links
    assert last.links["self"]["url"].path_qs == next_url.path_qs
