"""Every route enforces exactly the roles ``/openapi.json`` declares, and no handler checks a
role itself: the route table is the only place access is decided."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from core.identity.identities import Role
from core.identity.tokens import mint_token

SECRET = "a-declared-roles-test-secret-long-enough-0123"
PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
# A path parameter no resource has: access is decided before the resource is looked up.
PATH_PARAMETER = re.compile(r"\{[^}]+\}")


def bearer(role: Role) -> dict[str, str]:
    subject = "900101300126" if role is Role.CITIZEN else f"official-{role.value}"
    agency = "almaty-akimat" if role is Role.AGENCY else None
    token = mint_token(SECRET.encode(), role=role.value, sub=subject, agency=agency)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(make_client: Any) -> Any:
    return await make_client(identity={"jwt_secret": SECRET})


async def operations(api: Any) -> list[tuple[str, str, dict[str, Any]]]:
    document = await (await api.get("/openapi.json")).json()
    return [
        (method.upper(), PATH_PARAMETER.sub("no-such-id", path), operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


async def call(api: Any, method: str, path: str, headers: dict[str, str] | None = None) -> int:
    response = await api.request(method, path, json={}, headers=headers or {})
    await response.read()
    status: int = response.status
    return status


async def test_every_route_with_roles_refuses_a_caller_without_a_token(api: Any) -> None:
    checked = []
    for method, path, operation in await operations(api):
        if "x-qatysu-roles" in operation:
            assert await call(api, method, path) == 401, operation["operationId"]
            checked.append(operation["operationId"])
    assert "petitions.sign" in checked
    assert len(checked) >= 10


async def test_every_route_with_roles_refuses_each_role_it_does_not_declare(api: Any) -> None:
    for method, path, operation in await operations(api):
        declared = set(operation.get("x-qatysu-roles", Role))
        for role in set(Role) - declared:
            status = await call(api, method, path, bearer(role))
            assert status == 403, (operation["operationId"], role)


async def test_every_route_lets_each_role_it_declares_past_the_access_check(api: Any) -> None:
    for method, path, operation in await operations(api):
        for role in operation.get("x-qatysu-roles", Role):
            status = await call(api, method, path, bearer(Role(role)))
            assert status not in (401, 403), (operation["operationId"], role, status)


async def test_every_public_route_answers_an_anonymous_caller(api: Any) -> None:
    public = [op for op in await operations(api) if "x-qatysu-roles" not in op[2]]
    assert {op[2]["operationId"] for op in public} >= {"petitions.get", "ops.healthz"}
    for method, path, operation in public:
        status = await call(api, method, path)
        assert status not in (401, 403), (operation["operationId"], status)


def calls_in(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else None
            if isinstance(function, ast.Name):
                name = function.id
            if name is not None:
                names.add(name)
    return names


def test_no_plugin_checks_a_role_or_demands_a_token_itself() -> None:
    modules = sorted(PLUGINS.rglob("*.py"))
    assert len(modules) > 20
    for module in modules:
        assert calls_in(module).isdisjoint({"ensure_role", "require", "Unauthorized"}), module
