"""The route table: a declaration is checked against its handler, then enforced before it runs."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from core.identity.identities import Identity, Role
from core.identity.tokens import mint_token
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.routing import (
    QueryRoles,
    RouteDeclarationError,
    RoutePolicy,
    RouteRegistry,
    Routes,
    critical,
    normal,
    sheddable,
)
from core.wire.bodies import json_response


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)


class Filter(BaseModel):
    limit: int = Field(default=5, ge=1, le=10)


class Receipt(BaseModel):
    """A stored note."""

    model_config = ConfigDict(extra="forbid")

    text: str
    author: str


calls: list[str] = []
NOTES = Routes("/test/notes", tags=("notes",))


@NOTES.post(
    "",
    name="test.notes.create",
    summary="Write a note",
    policy=RoutePolicy(),
    roles=Role.CITIZEN,
    body=Note,
    responses={201: Receipt},
)
async def write_note(request: web.Request, identity: Identity, body: Note) -> web.Response:
    calls.append("write_note")
    return json_response({"text": body.text, "author": identity.subject}, status=201)


@NOTES.get(
    "",
    name="test.notes.list",
    summary="List notes",
    policy=RoutePolicy(),
    query=Filter,
    responses={200: "Notes"},
)
async def list_notes(
    request: web.Request, identity: Identity | None, query: Filter
) -> web.Response:
    return json_response({"limit": query.limit, "anonymous": identity is None})


@NOTES.post(
    "/officials",
    name="test.notes.officials",
    summary="For officials",
    policy=RoutePolicy(),
    roles=(Role.AGENCY, Role.MODERATOR),
    responses={200: "Seen"},
)
async def officials_only(request: web.Request) -> web.Response:
    calls.append("officials_only")
    return json_response({"seen": True})


@NOTES.get(
    "/broken",
    name="test.notes.broken",
    summary="Answers what it does not declare",
    policy=RoutePolicy(),
    responses={200: Receipt},
)
async def broken(request: web.Request) -> web.Response:
    return json_response({"text": "no author"})


@NOTES.get(
    "/teapot",
    name="test.notes.teapot",
    summary="Answers a status it does not declare",
    policy=RoutePolicy(),
    responses={200: "Fine"},
)
async def teapot(request: web.Request) -> web.Response:
    return json_response({}, status=218)


class Hidden(BaseModel):
    include_hidden: bool = False


@NOTES.get(
    "/all",
    name="test.notes.all",
    summary="Notes, hidden ones too for moderators",
    policy=RoutePolicy(),
    query=Hidden,
    query_roles=QueryRoles(
        roles=frozenset({Role.MODERATOR}),
        asks=lambda query: query.include_hidden,
        description="hidden notes",
    ),
    responses={200: "Notes"},
)
async def all_notes(request: web.Request, query: Hidden) -> web.Response:
    calls.append("all_notes")
    return json_response({"hidden": query.include_hidden})


class NotesPlugin:
    @hookimpl
    def qatysu_add_routes(self, routes: RouteRegistry) -> None:
        routes.include(NOTES)


SECRET = "a-routing-test-secret-that-is-long-enough-0123"
IDENTITY = {"jwt_secret": SECRET}


@pytest.fixture
async def notes(make_client: Any) -> Any:
    calls.clear()
    return await make_client(extra_plugins=(NotesPlugin(),), identity=IDENTITY)


def bearer(role: Role, *, agency: str | None = None) -> dict[str, str]:
    subject = "900101300126" if role is Role.CITIZEN else "official-1"
    token = mint_token(SECRET.encode(), role=role.value, sub=subject, agency=agency)
    return {"Authorization": f"Bearer {token}"}


async def test_a_route_with_roles_refuses_a_request_without_a_token_before_its_handler(
    notes: Any,
) -> None:
    response = await notes.post("/test/notes", json={"text": "hi"})
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert calls == []


async def test_a_route_with_roles_refuses_another_role_before_its_handler(notes: Any) -> None:
    response = await notes.post("/test/notes/officials", headers=bearer(Role.CITIZEN))
    assert response.status == 403
    body = await response.json()
    assert body["detail"] == "this route is for agency, moderator; the token's role is citizen"
    assert calls == []


async def test_the_roles_are_checked_before_the_body_is_read(notes: Any) -> None:
    response = await notes.post("/test/notes", data=b"not json", headers=bearer(Role.MODERATOR))
    assert response.status == 403
    assert calls == []


async def test_an_allowed_role_reaches_the_handler_with_its_identity_and_parsed_body(
    notes: Any,
) -> None:
    response = await notes.post("/test/notes", json={"text": "hi"}, headers=bearer(Role.CITIZEN))
    assert response.status == 201
    body = await response.json()
    assert body["text"] == "hi"
    assert body["author"] != "900101300126"
    assert len(body["author"]) == 64
    assert calls == ["write_note"]


async def test_any_of_several_declared_roles_is_allowed(notes: Any) -> None:
    for role in (Role.AGENCY, Role.MODERATOR):
        agency = "almaty-akimat" if role is Role.AGENCY else None
        response = await notes.post("/test/notes/officials", headers=bearer(role, agency=agency))
        assert response.status == 200
    assert calls == ["officials_only", "officials_only"]


async def test_a_declared_body_is_validated_into_its_model(notes: Any) -> None:
    response = await notes.post(
        "/test/notes", json={"text": "", "extra": 1}, headers=bearer(Role.CITIZEN)
    )
    assert response.status == 422
    fields = sorted(error["field"] for error in (await response.json())["errors"])
    assert fields == ["extra", "text"]
    assert calls == []


async def test_a_declared_query_is_validated_and_a_public_route_sees_an_anonymous_caller(
    notes: Any,
) -> None:
    response = await notes.get("/test/notes?limit=7")
    assert await response.json() == {"limit": 7, "anonymous": True}
    refused = await notes.get("/test/notes?limit=70")
    assert refused.status == 422


async def test_a_public_route_sees_the_caller_when_a_token_is_sent(notes: Any) -> None:
    response = await notes.get("/test/notes", headers=bearer(Role.CITIZEN))
    assert await response.json() == {"limit": 5, "anonymous": False}


async def test_an_answer_that_does_not_fit_its_declared_model_fails_under_validation(
    notes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    response = await notes.get("/test/notes/broken")
    assert response.status == 500
    assert "route 'test.notes.broken' answered 200 not matching Receipt" in caplog.text
    assert "author" in caplog.text


async def test_an_undeclared_status_fails_under_validation(
    notes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    response = await notes.get("/test/notes/teapot")
    assert response.status == 500
    assert "route 'test.notes.teapot' answered 218, not declared" in caplog.text


async def test_without_validation_an_undeclared_answer_goes_out(make_client: Any) -> None:
    client = await make_client(extra_plugins=(NotesPlugin(),), server={"validate_responses": False})
    response = await client.get("/test/notes/teapot")
    assert response.status == 218


async def test_a_query_asking_for_the_wider_view_needs_a_declared_role(notes: Any) -> None:
    assert (await notes.get("/test/notes/all")).status == 200
    assert (await notes.get("/test/notes/all?include_hidden=true")).status == 401
    citizen = await notes.get("/test/notes/all?include_hidden=true", headers=bearer(Role.CITIZEN))
    assert citizen.status == 403
    moderator = await notes.get(
        "/test/notes/all?include_hidden=true", headers=bearer(Role.MODERATOR)
    )
    assert await moderator.json() == {"hidden": True}
    assert calls == ["all_notes", "all_notes"]


async def test_the_wider_view_and_its_roles_are_in_the_openapi_document(notes: Any) -> None:
    document = await (await notes.get("/openapi.json")).json()
    operation = document["paths"]["/test/notes/all"]["get"]
    assert operation["x-qatysu-query-roles"] == [{"roles": ["moderator"], "when": "hidden notes"}]
    assert "x-qatysu-roles" not in operation


def test_query_roles_without_a_declared_query_are_refused_at_declaration() -> None:
    table = Routes()
    with pytest.raises(RouteDeclarationError, match="query_roles needs a declared query"):
        table.get(
            "",
            name="x",
            summary="x",
            policy=RoutePolicy(),
            query_roles=QueryRoles(roles=frozenset({Role.MODERATOR}), asks=bool, description="x"),
        )


def test_a_handler_that_does_not_take_its_declared_body_is_refused_at_declaration() -> None:
    table = Routes()
    with pytest.raises(RouteDeclarationError, match="a body is declared but not taken"):

        @table.post("", name="x", summary="x", policy=RoutePolicy(), body=Note)
        async def handler(request: web.Request) -> web.Response:
            raise AssertionError


def test_a_handler_that_takes_an_undeclared_query_is_refused_at_declaration() -> None:
    table = Routes()
    with pytest.raises(RouteDeclarationError, match="the handler takes an undeclared query"):

        @table.get("", name="x", summary="x", policy=RoutePolicy())
        async def handler(request: web.Request, query: Filter) -> web.Response:
            raise AssertionError


def test_a_handler_that_asks_for_an_unknown_argument_is_refused_at_declaration() -> None:
    table = Routes()
    with pytest.raises(RouteDeclarationError, match=r"asks for \['session'\]"):

        @table.get("", name="x", summary="x", policy=RoutePolicy())
        async def handler(request: web.Request, session: str) -> web.Response:
            raise AssertionError


def test_a_route_name_declared_twice_is_refused() -> None:
    registry = RouteRegistry()
    registry.include(NOTES)
    with pytest.raises(ValueError, match=r"'test\.notes\.create' is registered twice"):
        registry.include(NOTES)


def test_declared_paths_carry_the_tables_prefix_and_tags() -> None:
    specs = {spec.name: spec for spec in NOTES}
    assert specs["test.notes.create"].path == "/test/notes"
    assert specs["test.notes.officials"].path == "/test/notes/officials"
    assert specs["test.notes.officials"].roles == frozenset({Role.AGENCY, Role.MODERATOR})
    assert specs["test.notes.list"].tags == ("notes",)
    assert specs["test.notes.list"].roles is None


def test_the_registry_hands_admission_each_routes_policy() -> None:
    registry = RouteRegistry()
    registry.include(NOTES)
    assert registry.policy("test.notes.create") == RoutePolicy()
    assert registry.policy("no.such.route") is None
    assert registry.policy(None) is None


def test_the_policy_helpers_name_their_priority_and_budget() -> None:
    from core.plugin_host.priority import Priority, RatePolicy

    assert critical("a", rate=1.0, burst=2) == RoutePolicy(
        priority=Priority.CRITICAL, rate=RatePolicy(name="a", rate=1.0, burst=2)
    )
    assert normal("b", rate=3.0, burst=4).priority is Priority.NORMAL
    assert sheddable("c", rate=5.0, burst=6).priority is Priority.SHEDDABLE
