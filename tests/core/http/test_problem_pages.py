"""Every problem ``type`` the server can send resolves to a page that explains it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from core.host.app import create_app  # noqa: F401  (imports every module that defines a problem)
from core.http import connections
from core.http.problem_pages import PAGES
from core.wire.errors import Problem, problem_type


def subclasses(cls: type[Problem]) -> set[type[Problem]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


def canned_answers(value: object) -> Iterator[bytes]:
    """The canned HTTP answers in ``value``, however they are grouped."""
    if isinstance(value, bytes) and value.startswith(b"HTTP/1.1 "):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from canned_answers(item)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from canned_answers(item)


def canned_types() -> set[str]:
    answers = [a for value in vars(connections).values() for a in canned_answers(value)]
    assert len(answers) >= 3
    return {orjson.loads(answer.partition(b"\r\n\r\n")[2])["type"] for answer in answers}


def test_every_problem_class_and_canned_answer_has_a_page() -> None:
    sent = {problem_type(cls.slug) for cls in subclasses(Problem) | {Problem}}
    sent |= canned_types() | {problem_type("http-error")}
    documented = {problem_type(slug) for slug in PAGES}
    assert sent - documented == set()
    assert len(sent) >= 18


async def test_a_problems_type_resolves_to_its_page(make_client: Any) -> None:
    client = await make_client()
    answer = await client.get("/api/v1/petitions/no-such-id")
    problem = await answer.json(content_type=None)
    page = await client.get(problem["type"])
    assert page.status == 200
    assert page.content_type == "text/html"
    text = await page.text()
    assert "<h1>Not found</h1>" in text
    assert "<h2>What to do</h2>" in text


@pytest.mark.parametrize("slug", sorted(PAGES))
async def test_each_page_names_its_type_and_status(make_client: Any, slug: str) -> None:
    client = await make_client()
    page = await client.get(problem_type(slug))
    assert page.status == 200
    text = await page.text()
    assert f"<code>{problem_type(slug)}</code>" in text
    assert f"HTTP status {PAGES[slug].status}." in text


async def test_the_index_links_every_page(make_client: Any) -> None:
    client = await make_client()
    text = await (await client.get("/problems")).text()
    for slug in PAGES:
        assert f'href="{problem_type(slug)}"' in text


async def test_an_unknown_problem_type_is_404(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/problems/no-such-problem")
    assert response.status == 404
    assert response.content_type == "application/problem+json"
