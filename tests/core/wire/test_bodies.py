"""JSON bodies in, JSON out: 415, 413, 400 and 422 are each told apart, with the field at fault."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.routing import RoutePolicy, RouteRegistry
from core.wire.bodies import BodyTimes, json_response
from tests.support.slowbodies import status_of


class Greeting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2)
    times: int = Field(ge=1, le=3)


class Paging(BaseModel):
    limit: int = Field(default=10, ge=1, le=50)


async def echo(request: web.Request, body: Greeting) -> web.Response:
    return json_response(body.model_dump(), status=201, headers={"X-Echo": "yes"})


async def page(request: web.Request, query: Paging) -> web.Response:
    return json_response(query.model_dump())


class EchoPlugin:
    @hookimpl
    def qatysu_add_routes(self, routes: RouteRegistry, app: web.Application) -> None:
        routes.add(
            "POST",
            "/test/echo",
            echo,
            name="test.echo",
            summary="Echo",
            policy=RoutePolicy(),
            body=Greeting,
        )
        routes.add(
            "GET",
            "/test/page",
            page,
            name="test.page",
            summary="Page",
            policy=RoutePolicy(),
            query=Paging,
        )


@pytest.fixture
async def echo_client(make_client: Any) -> Any:
    return await make_client(extra_plugins=(EchoPlugin(),), server={"max_body_bytes": 1024})


async def test_a_valid_body_is_read_into_its_model(echo_client: Any) -> None:
    response = await echo_client.post("/test/echo", json={"name": "Dana", "times": 2})
    assert response.status == 201
    assert response.content_type == "application/json"
    assert response.headers["X-Echo"] == "yes"
    assert await response.json() == {"name": "Dana", "times": 2}


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("text/plain", "text/plain"),
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
    ],
)
async def test_a_body_that_is_not_json_is_415(
    echo_client: Any, content_type: str, named: str
) -> None:
    response = await echo_client.post(
        "/test/echo", data=b'{"name": "Dana", "times": 2}', headers={"Content-Type": content_type}
    )
    assert response.status == 415
    assert response.content_type == "application/problem+json"
    assert await response.json() == {
        "type": "/problems/unsupported-media-type",
        "title": "Unsupported media type",
        "status": 415,
        "detail": f"the body must be application/json, not {named}",
    }


async def test_a_body_over_the_limit_is_413(echo_client: Any) -> None:
    big = b'{"name": "' + b"x" * 2048 + b'", "times": 1}'
    response = await echo_client.post(
        "/test/echo", data=big, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    assert await response.json() == {
        "type": "/problems/payload-too-large",
        "title": "Payload too large",
        "status": 413,
        "detail": "the body is larger than the limit of 1024 bytes",
    }


async def test_malformed_json_is_400_with_the_position(echo_client: Any) -> None:
    response = await echo_client.post(
        "/test/echo",
        data=b'{"name": "Dana",\n "times": }',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    body = await response.json()
    assert body["type"] == "/problems/bad-request"
    assert body["title"] == "Bad request"
    assert body["status"] == 400
    assert body["detail"].startswith("the body is not valid JSON: ")
    assert body["detail"].endswith(" at line 2 column 11")
    assert (body["line"], body["column"], body["position"]) == (2, 11, 27)


async def test_an_empty_json_body_is_400(echo_client: Any) -> None:
    response = await echo_client.post(
        "/test/echo", data=b"", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["type"] == "/problems/bad-request"


async def test_invalid_fields_are_422_with_one_error_each(echo_client: Any) -> None:
    response = await echo_client.post("/test/echo", json={"name": "D", "times": 9, "colour": "red"})
    assert response.status == 422
    body = await response.json()
    assert body["type"] == "/problems/validation"
    assert body["title"] == "Unprocessable content"
    assert body["status"] == 422
    assert body["errors"] == [
        {"field": "name", "message": "String should have at least 2 characters"},
        {"field": "times", "message": "Input should be less than or equal to 3"},
        {"field": "colour", "message": "Extra inputs are not permitted"},
    ]
    assert body["detail"] == (
        "3 field(s) are invalid: name: String should have at least 2 characters; "
        "times: Input should be less than or equal to 3; colour: Extra inputs are not permitted"
    )


async def test_a_body_that_is_not_an_object_is_422_about_the_body(echo_client: Any) -> None:
    response = await echo_client.post("/test/echo", json=[1, 2])
    assert response.status == 422
    [error] = (await response.json())["errors"]
    assert error["field"] == "(body)"


async def test_missing_fields_are_named(echo_client: Any) -> None:
    response = await echo_client.post("/test/echo", json={})
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["name", "times"]


async def test_query_parameters_are_validated(echo_client: Any) -> None:
    ok = await echo_client.get("/test/page", params={"limit": "7"})
    assert ok.status == 200
    assert await ok.json() == {"limit": 7}
    default = await echo_client.get("/test/page")
    assert await default.json() == {"limit": 10}
    bad = await echo_client.get("/test/page", params={"limit": "500"})
    assert bad.status == 422
    assert (await bad.json())["errors"] == [
        {"field": "limit", "message": "Input should be less than or equal to 50"}
    ]


# -- the body's deadline ----------------------------------------------------------------------

GREETING = b'{"name": "Dana", "times": 2}'
# A grace and a rate small enough for a test: 0.3 s, then 100 bytes a second.
SLOW_LIMITS = {"max_body_bytes": 1024, "body_grace": 0.3, "body_min_rate": 100.0}


async def slow_echo_client(make_client: Any, **server: object) -> Any:
    return await make_client(extra_plugins=(EchoPlugin(),), server={**SLOW_LIMITS, **server})


def test_each_body_byte_buys_time_past_the_grace_up_to_the_whole_request_deadline() -> None:
    times = BodyTimes(total=30.0, min_rate=500.0, grace=5.0)
    assert times.due(100.0, 0) == 105.0
    assert times.due(100.0, 1000) == 107.0
    assert times.due(100.0, 64 * 1024) == 130.0
    assert BodyTimes(total=30.0, min_rate=0.0, grace=5.0).due(100.0, 0) == 130.0


async def test_a_body_that_stops_coming_is_a_408_problem_that_closes_the_connection(
    make_client: Any,
    slow_bodies: Any,
) -> None:
    client = await slow_echo_client(make_client)
    started = time.monotonic()
    request = await slow_bodies(client.server.port, path="/test/echo", sent=GREETING[:10])
    answer = await request.answer(within=5)
    waited = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert status_of(answer) == 408
    assert b"Connection: close" in head
    assert b"Content-Type: application/problem+json" in head
    assert orjson.loads(body) == {
        "type": "/problems/request-timeout",
        "title": "Request timeout",
        "status": 408,
        "detail": f"the request body did not arrive in time: 10 of its bytes came in"
        f" {orjson.loads(body)['detail'].split(' in ')[-1]}",
    }
    # Ten bytes at 100 a second buy 0.1 s past the 0.3 s grace, and not the whole 30 s.
    assert 0.4 <= waited < 30


async def test_a_body_that_keeps_to_the_minimum_rate_is_read_past_the_grace(
    make_client: Any,
    slow_bodies: Any,
) -> None:
    client = await slow_echo_client(make_client)
    padded = GREETING + b" " * 32  # 60 bytes, sent at 150 a second: 0.4 s, past the grace
    request = await slow_bodies(
        client.server.port, path="/test/echo", announced=len(padded), sent=padded[:6]
    )
    for start in range(6, len(padded), 6):
        await asyncio.sleep(0.04)
        await request.send(padded[start : start + 6])
    answer = await request.answer(within=5)
    assert status_of(answer) == 201


async def test_the_whole_request_deadline_cuts_a_body_that_keeps_any_rate(
    make_client: Any,
    slow_bodies: Any,
) -> None:
    client = await slow_echo_client(make_client, request_timeout=0.4, body_min_rate=0.0)
    padded = GREETING + b" " * 40
    request = await slow_bodies(
        client.server.port, path="/test/echo", announced=len(padded), sent=padded[:4]
    )
    answer = asyncio.ensure_future(request.answer(within=5))
    sent = 4
    while not answer.done() and sent < len(padded):
        await asyncio.sleep(0.05)
        await request.send(padded[sent : sent + 2])
        sent += 2
    assert status_of(await answer) == 408
    assert sent < len(padded)


async def test_a_body_announced_over_the_limit_is_413_before_any_of_it_arrives(
    make_client: Any,
    slow_bodies: Any,
) -> None:
    client = await slow_echo_client(make_client)
    request = await slow_bodies(client.server.port, path="/test/echo", announced=5000, sent=b"")
    answer = await request.answer(within=5)
    assert status_of(answer) == 413
    assert b'"detail":"the body is larger than the limit of 1024 bytes"' in answer
