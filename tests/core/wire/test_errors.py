"""Every error is problem+json with its exact status, title and type; a bug is a bare 500."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from aiohttp import web

from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.routing import RoutePolicy, RouteRegistry
from core.wire.bodies import json_response
from core.wire.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Problem,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
    field_error,
    invalid,
)

PROBLEMS: list[tuple[Problem, int, str, str]] = [
    (BadRequest("the body is not JSON"), 400, "Bad request", "/problems/bad-request"),
    (Unauthorized("no token"), 401, "Unauthorized", "/problems/unauthorized"),
    (Forbidden("wrong role"), 403, "Forbidden", "/problems/forbidden"),
    (NotFound("no such petition"), 404, "Not found", "/problems/not-found"),
    (MethodNotAllowed("use GET"), 405, "Method not allowed", "/problems/method-not-allowed"),
    (Conflict("already answered"), 409, "Conflict", "/problems/conflict"),
    (PayloadTooLarge("too big"), 413, "Payload too large", "/problems/payload-too-large"),
    (
        UnsupportedMediaType("not JSON"),
        415,
        "Unsupported media type",
        "/problems/unsupported-media-type",
    ),
    (
        Unprocessable("title: too short", errors=[field_error("title", "too short")]),
        422,
        "Unprocessable content",
        "/problems/validation",
    ),
    (
        TooManyRequests("slow down", headers={"Retry-After": "2"}),
        429,
        "Too many requests",
        "/problems/rate-limited",
    ),
    (ServiceUnavailable("shed"), 503, "Service unavailable", "/problems/unavailable"),
]


def rendered(problem: Problem) -> tuple[web.Response, dict[str, Any]]:
    response = problem.response()
    assert isinstance(response.body, bytes)
    return response, orjson.loads(response.body)


@pytest.mark.parametrize(
    ("problem", "status", "title", "type_"), PROBLEMS, ids=[p[0].slug for p in PROBLEMS]
)
def test_each_problem_renders_its_status_title_type_and_detail(
    problem: Problem, status: int, title: str, type_: str
) -> None:
    response, body = rendered(problem)
    assert response.status == status
    assert response.content_type == "application/problem+json"
    expected: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": problem.detail,
    }
    if problem.errors is not None:
        expected["errors"] = problem.errors
    assert body == expected


def test_unprocessable_carries_its_field_errors() -> None:
    _, body = rendered(
        Unprocessable(
            "2 field(s) are invalid",
            errors=[field_error("title", "too short"), field_error("addressee", "unknown")],
        )
    )
    assert body["errors"] == [
        {"field": "title", "message": "too short"},
        {"field": "addressee", "message": "unknown"},
    ]


def test_invalid_builds_a_422_about_one_field() -> None:
    _, body = rendered(invalid("closes_at", "must be in the future"))
    assert body == {
        "type": "/problems/validation",
        "title": "Unprocessable content",
        "status": 422,
        "detail": "closes_at: must be in the future",
        "errors": [{"field": "closes_at", "message": "must be in the future"}],
    }


def test_a_problem_without_errors_has_no_errors_member() -> None:
    _, body = rendered(Conflict("already answered"))
    assert "errors" not in body


@pytest.mark.parametrize(
    ("retry_after", "header"), [(1.0, "1"), (0.01, "1"), (0.0, "1"), (2.3, "3"), (30, "30")]
)
def test_service_unavailable_carries_retry_after_in_whole_seconds_of_at_least_one(
    retry_after: float, header: str
) -> None:
    response, _ = rendered(ServiceUnavailable("shed", retry_after=retry_after))
    assert response.headers["Retry-After"] == header


def test_too_many_requests_carries_retry_after_and_ratelimit_headers() -> None:
    response, _ = rendered(
        TooManyRequests(
            "slow down",
            headers={
                "Retry-After": "2",
                "RateLimit-Policy": '"sign";q=10;w=10',
                "RateLimit": '"sign";r=0;t=2',
            },
        )
    )
    assert response.status == 429
    assert response.headers["Retry-After"] == "2"
    assert response.headers["RateLimit-Policy"] == '"sign";q=10;w=10'
    assert response.headers["RateLimit"] == '"sign";r=0;t=2'


def test_unauthorized_carries_a_bearer_challenge() -> None:
    response, _ = rendered(Unauthorized("no token"))
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="qatysu"'


def test_extra_members_are_added_to_the_body() -> None:
    _, body = rendered(BadRequest("bad JSON", extra={"line": 1, "column": 7}))
    assert body["line"] == 1
    assert body["column"] == 7


class BrokenPlugin:
    """Routes that fail in each way a handler can."""

    @hookimpl
    def qatysu_add_routes(self, routes: RouteRegistry, app: web.Application) -> None:
        routes.add(
            "GET", "/test/bug", self.bug, name="test.bug", summary="A bug", policy=RoutePolicy()
        )
        routes.add(
            "GET",
            "/test/unavailable",
            self.unavailable,
            name="test.unavailable",
            summary="Shed",
            policy=RoutePolicy(),
        )
        routes.add(
            "GET",
            "/test/limited",
            self.limited,
            name="test.limited",
            summary="Limited",
            policy=RoutePolicy(),
        )
        routes.add("GET", "/test/ok", self.ok, name="test.ok", summary="Fine", policy=RoutePolicy())

    async def bug(self, request: web.Request) -> web.Response:
        raise RuntimeError("secret internal state: db password hunter2")

    async def unavailable(self, request: web.Request) -> web.Response:
        raise ServiceUnavailable("the server is draining", retry_after=4)

    async def limited(self, request: web.Request) -> web.Response:
        raise TooManyRequests("slow down", headers={"Retry-After": "7"})

    async def ok(self, request: web.Request) -> web.Response:
        return json_response({"ok": True})


async def test_an_unexpected_exception_is_a_bare_500_and_the_log_has_the_traceback(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(extra_plugins=(BrokenPlugin(),))
    with caplog.at_level(logging.ERROR, logger="qatysu.request"):
        response = await client.get("/test/bug", headers={"X-Request-Id": "req-bug-1"})
    assert response.status == 500
    assert response.content_type == "application/problem+json"
    assert response.headers["X-Request-Id"] == "req-bug-1"
    text = await response.text()
    assert "hunter2" not in text
    assert "RuntimeError" not in text
    assert orjson.loads(text) == {
        "type": "/problems/internal",
        "title": "Internal server error",
        "status": 500,
        "detail": "The server failed to handle this request; it has been logged.",
        "request_id": "req-bug-1",
    }
    [record] = [r for r in caplog.records if r.name == "qatysu.request"]
    assert "req-bug-1" in record.getMessage()
    assert "/test/bug" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert "hunter2" in caplog.text  # the traceback, in the log only


async def test_a_problem_raised_by_a_handler_reaches_the_client_with_its_headers(
    make_client: Any,
) -> None:
    client = await make_client(extra_plugins=(BrokenPlugin(),))
    shed = await client.get("/test/unavailable")
    assert shed.status == 503
    assert shed.headers["Retry-After"] == "4"
    assert await shed.json() == {
        "type": "/problems/unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "the server is draining",
    }
    limited = await client.get("/test/limited")
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.content_type == "application/problem+json"


async def test_an_unsafe_incoming_request_id_is_replaced(make_client: Any) -> None:
    client = await make_client(extra_plugins=(BrokenPlugin(),))
    response = await client.get("/test/ok", headers={"X-Request-Id": "bad id\twith spaces"})
    assert response.status == 200
    assert response.headers["X-Request-Id"] != "bad id\twith spaces"
    assert response.headers["X-Request-Id"]


async def test_an_unknown_path_is_a_404_problem(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/no/such/route")
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert await response.json() == {
        "type": "/problems/not-found",
        "title": "Not found",
        "status": 404,
        "detail": "Not Found",
    }


async def test_a_wrong_method_is_a_405_problem_with_allow(make_client: Any) -> None:
    client = await make_client()
    response = await client.delete("/healthz")
    assert response.status == 405
    assert response.content_type == "application/problem+json"
    assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD"}
    assert await response.json() == {
        "type": "/problems/method-not-allowed",
        "title": "Method not allowed",
        "status": 405,
        "detail": "Method Not Allowed",
    }
