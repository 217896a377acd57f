"""Values no database stores are refused at the boundary, on SQLite and PostgreSQL alike.

Each request here answered 500 before the boundary checked it: a cursor holding 2^63 or an
object, an integer beyond its column, a datetime that overflows once converted to UTC, and NUL
in text, a filter or a path (PostgreSQL refuses NUL in text).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import orjson
import pytest

from core.wire.bounds import INT4_MAX, MAX_DEPTH, Moment, refused_fields
from core.wire.errors import BadRequest
from tests.support.consultations import DRAFT, window
from tests.support.identities import agency, citizen
from tests.support.petitions import PETITION
from tests.support.problems import error_fields, problem

FOREIGN_CURSOR = "the cursor is not one this server issued"


def cursor_of(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


@pytest.mark.parametrize(
    "url",
    [
        # The three cursors that answered 500 on the commit, verbatim.
        "/api/v1/information?q=x&cursor=WzkyMjMzNzIwMzY4NTQ3NzU4MDhd",
        "/api/v1/petitions?sort=signatures&cursor=WzkyMjMzNzIwMzY4NTQ3NzU4MDgsIngiXQ",
        "/api/v1/petitions?cursor=WyIyMDI0LTAxLTAxVDAwOjAwOjAwWiIse31d",
        f"/api/v1/petitions?cursor={cursor_of(['0001-01-01T00:00:00+14:00', 'x'])}",
        f"/api/v1/petitions?sort=signatures&cursor={cursor_of([2**31, 'x'])}",
        f"/api/v1/petitions?sort=signatures&cursor={cursor_of([True, 'x'])}",
        f"/api/v1/information?q=budget&cursor={cursor_of([2**40])}",
        f"/api/v1/information?q=budget&cursor={cursor_of([-1])}",
        f"/api/v1/consultations?cursor={cursor_of(['2024-01-01T00:00:00Z', 'a' * 65])}",
        f"/api/v1/consultations?cursor={cursor_of(['2024-01-01T00:00:00', 'x'])}",
        f"/api/v1/information-requests/public?cursor={cursor_of(['2024-01-01T00:00:00Z', 7])}",
        "/api/v1/information?cursor=" + cursor_of(["2024-01-01T00:00:00Z", "x\x00"]),
        "/api/v1/information?cursor=%C3%A9",
    ],
)
async def test_a_forged_cursor_is_400_never_a_query(client: Any, url: str) -> None:
    body = await problem(await client.get(url), 400)
    assert body["detail"] == FOREIGN_CURSOR


async def test_a_cursor_this_server_issued_still_pages(client: Any) -> None:
    for n in range(3):
        response = await client.post(
            "/api/v1/information",
            json={"title": f"Item {n}", "body": "Text.", "category": "budget", "language": "en"},
            headers=agency(),
        )
        assert response.status == 201, await response.text()
    first = await (await client.get("/api/v1/information?limit=2")).json()
    second = await client.get(f"/api/v1/information?limit=2&cursor={first['next_cursor']}")
    page = await second.json()
    assert second.status == 200
    assert len(first["items"]) == 2
    assert len(page["items"]) == 1
    assert page["next_cursor"] is None


@pytest.mark.parametrize("section", [2**63, INT4_MAX + 1, -(2**63) - 1])
async def test_a_comment_section_beyond_the_column_is_422_naming_it(
    client: Any, section: int, open_consultation
) -> None:
    consultation = await open_consultation(client)
    response = await client.post(
        f"/api/v1/consultations/{consultation['id']}/comments",
        json={"text": "Please publish it.", "section": section},
        headers=citizen(),
    )
    assert error_fields(await problem(response, 422)) == ["section"]


async def test_a_section_filter_beyond_the_column_is_422_naming_it(
    client: Any, open_consultation
) -> None:
    consultation = await open_consultation(client)
    response = await client.get(
        f"/api/v1/consultations/{consultation['id']}/comments?section=9223372036854775808"
    )
    assert error_fields(await problem(response, 422)) == ["section"]


async def test_a_section_number_beyond_the_column_is_422_naming_it(client: Any) -> None:
    draft = {**DRAFT, **window(), "sections": [{"number": 2**31, "text": "Too far."}]}
    response = await client.post("/api/v1/consultations", json=draft, headers=agency())
    assert error_fields(await problem(response, 422)) == ["sections.0.number"]


@pytest.mark.parametrize(
    "opens_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1800-01-01T00:00:00Z"]
)
async def test_a_datetime_at_the_edge_of_the_range_is_422_naming_it(
    client: Any, opens_at: str
) -> None:
    draft = {**DRAFT, **window(), "opens_at": opens_at}
    response = await client.post("/api/v1/consultations", json=draft, headers=agency())
    assert error_fields(await problem(response, 422)) == ["opens_at"]


@pytest.mark.parametrize("opens_at", [0, 1796668354, 1.5, True])
async def test_a_datetime_written_as_a_number_is_422_naming_it(client: Any, opens_at: Any) -> None:
    draft = {**DRAFT, **window(), "opens_at": opens_at}
    response = await client.post("/api/v1/consultations", json=draft, headers=agency())
    assert error_fields(await problem(response, 422)) == ["opens_at"]


async def test_nul_in_a_body_text_is_422_naming_the_field(client: Any) -> None:
    response = await client.post(
        "/api/v1/petitions", json={**PETITION, "title": "Light the\x00 footpath"}, headers=citizen()
    )
    body = await problem(response, 422)
    assert error_fields(body) == ["title"]
    assert body["errors"][0]["message"] == "must not contain a NUL character"


async def test_nul_in_a_nested_body_field_is_422_naming_its_path(client: Any) -> None:
    draft = {**DRAFT, **window(), "sections": [{"text": "ok"}, {"text": "bad\x00"}]}
    response = await client.post("/api/v1/consultations", json=draft, headers=agency())
    assert error_fields(await problem(response, 422)) == ["sections.1.text"]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/petitions?addressee=%00", "addressee"),
        ("/api/v1/information?q=budget%00", "q"),
        ("/api/v1/consultations?agency=a%00b", "agency"),
    ],
)
async def test_nul_in_a_filter_is_422_naming_it(client: Any, url: str, field: str) -> None:
    assert error_fields(await problem(await client.get(url), 422)) == [field]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/petitions?%00a=1", "\\u0000a"),
        ("/api/v1/petitions/demo/signatures?x%00=1", "x\\u0000"),
    ],
)
async def test_nul_in_a_query_key_is_422_naming_it_escaped(
    client: Any, url: str, field: str
) -> None:
    response = await client.get(url)
    assert "\x00" not in await response.text()
    body = await problem(response, 422)
    assert error_fields(body) == [field]
    assert body["detail"] == f"a NUL character is not allowed in: {field}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/petitions/%00"),
        ("POST", "/api/v1/petitions/%00/signatures"),
        ("GET", "/api/v1/information/x%00y"),
        ("GET", "/api/v1/consultations/%00/comments"),
    ],
)
async def test_nul_in_a_path_parameter_is_422_naming_it(
    client: Any, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=citizen())
    assert error_fields(await problem(response, 422)) == ["id"]


def test_refused_fields_names_every_location_keys_included() -> None:
    data = {"a": "ok", "b": ["x", "y\x00"], "c": {"d\x00": 1, "e": {"f": "\x00"}}}
    assert list(refused_fields(data)) == ["b.1", "c.d\x00", "c.e.f"]
    assert list(refused_fields("\x00")) == ["(body)"]


def nested(depth: int, kind: str) -> bytes:
    """A JSON body ``depth`` containers deep: ``{"text": {"text": ... 1 ...}}`` or ``[[...]]``."""
    if kind == "object":
        return b'{"text":' * depth + b"1" + b"}" * depth
    return b"[" * depth + b"]" * depth


TOO_DEEP = f"the body is nested deeper than {MAX_DEPTH} levels"


# 900 to 1,024 answered 500 (RecursionError in the recursive walk); orjson parses up to 1,024.
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 1000, 1020, 1024])
@pytest.mark.parametrize("kind", ["object", "array"])
async def test_a_body_nested_deeper_than_the_limit_is_400_never_a_500(
    make_client: Any, depth: int, kind: str
) -> None:
    client = await make_client()
    response = await client.post(
        "/api/v1/petitions",
        data=nested(depth, kind),
        headers={**citizen(), "Content-Type": "application/json"},
    )
    assert (await problem(response, 400))["detail"] == TOO_DEEP


@pytest.mark.parametrize("depth", [1025, 5000])
async def test_a_body_deeper_than_the_parser_accepts_is_400_naming_the_position(
    make_client: Any, depth: int
) -> None:
    client = await make_client()
    response = await client.post(
        "/api/v1/petitions",
        data=nested(depth, "array"),
        headers={**citizen(), "Content-Type": "application/json"},
    )
    body = await problem(response, 400)
    assert body["detail"].startswith("the body is not valid JSON: depth limit exceeded")


async def test_a_body_at_the_depth_limit_reaches_validation(make_client: Any) -> None:
    client = await make_client()
    response = await client.post(
        "/api/v1/petitions",
        data=nested(MAX_DEPTH, "object"),
        headers={**citizen(), "Content-Type": "application/json"},
    )
    assert error_fields(await problem(response, 422)) == ["title", "text", "addressee"]


def test_the_walk_keeps_its_own_stack_whatever_the_depth() -> None:
    data: Any = "\x00"
    for _ in range(100_000):
        data = [data]
    with pytest.raises(BadRequest) as raised:
        list(refused_fields(data))
    assert raised.value.detail == TOO_DEEP


def test_nesting_up_to_the_limit_is_walked_in_full() -> None:
    data: Any = {"deep": "\x00"}
    for _ in range(MAX_DEPTH - 1):
        data = [data]
    assert list(refused_fields(data)) == [".".join(["0"] * (MAX_DEPTH - 1) + ["deep"])]


def test_a_moment_is_returned_in_utc() -> None:
    from pydantic import TypeAdapter

    moment = TypeAdapter(Moment).validate_python("2026-03-01T05:00:00+05:00")
    assert moment == dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC)
    assert moment.utcoffset() == dt.timedelta(0)
