"""Link headers of a page: self, and next with the cursor, every other parameter kept."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import make_mocked_request

from core.plugin_host import keys as plugin_host_keys
from core.wire.pagelinks import page_links, page_response


def test_a_page_with_a_next_cursor_links_to_itself_and_to_the_next() -> None:
    request = make_mocked_request("GET", "/api/v1/things?sort=new&cursor=abc&limit=5")
    assert page_links(request, "def_-9") == (
        '</api/v1/things?sort=new&cursor=abc&limit=5>; rel="self", '
        '</api/v1/things?sort=new&cursor=def_-9&limit=5>; rel="next"'
    )


def test_the_last_page_links_only_to_itself() -> None:
    request = make_mocked_request("GET", "/api/v1/things")
    assert page_links(request, None) == '</api/v1/things>; rel="self"'


def test_a_page_response_keeps_the_given_headers_beside_its_links() -> None:
    request = make_mocked_request("GET", "/api/v1/things?q=a%20b")
    response = page_response(request, [1, 2], "next", headers={"Cache-Control": "no-store"})
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Link"] == (
        '</api/v1/things?q=a%20b>; rel="self", </api/v1/things?q=a+b&cursor=next>; rel="next"'
    )
    assert response.body == b'{"items":[1,2],"next_cursor":"next"}'


async def test_every_public_list_route_answers_with_link_headers(make_client: Any) -> None:
    client = await make_client()
    lists = [
        spec.path
        for spec in client.app[plugin_host_keys.ROUTES]
        if spec.method == "GET"
        and "{" not in spec.path
        and spec.roles is None
        and isinstance(model := spec.responses.get(200), type)
        and "next_cursor" in model.model_fields
    ]
    assert len(lists) >= 4, lists
    for path in lists:
        response = await client.get(path)
        assert response.status == 200, path
        assert response.headers["Link"] == f'<{path}>; rel="self"', path
