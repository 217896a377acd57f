"""GET /openapi.json: a valid OpenAPI 3.1 document that describes every registered route."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from core import keys
from core.routing import RouteRegistry


@pytest.fixture
async def document(make_client: Any) -> tuple[dict[str, Any], RouteRegistry]:
    client = await make_client()
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    return body, client.app[keys.ROUTES]


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def template(path: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", r"{\1}", path)


def test_the_document_is_openapi_3_1_with_info(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "Qatysu"
    assert isinstance(spec["info"]["version"], str)
    assert spec["info"]["version"]


def test_every_registered_route_appears_with_its_method(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, routes = document
    registered = {(template(r.path), r.method.lower()) for r in routes}
    described = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert registered == described
    assert ("/api/v1/petitions/{id}/signatures", "post") in described
    assert ("/healthz", "get") in described


def test_operation_ids_are_the_unique_route_names(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, routes = document
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert set(ids) == {r.name for r in routes}


def test_every_reference_resolves_in_components(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    schemas = spec["components"]["schemas"]
    found = list(refs(spec))
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_request_bodies_reference_their_model_schema(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, routes = document
    schemas = spec["components"]["schemas"]
    with_body = [r for r in routes if r.body is not None]
    assert with_body
    for route in with_body:
        operation = spec["paths"][template(route.path)][route.method.lower()]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{route.body.__name__}"}
    create = schemas["PetitionCreate"]
    assert {"title", "text", "addressee"} <= set(create["properties"])


def test_path_parameters_are_declared(document: tuple[dict[str, Any], RouteRegistry]) -> None:
    spec, _ = document
    for path, item in spec["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, declared)


def test_routes_with_roles_declare_bearer_security_and_401_403(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    sign = spec["paths"]["/api/v1/petitions/{id}/signatures"]["post"]
    assert sign["security"] == [{"bearer": []}]
    assert sign["x-qatysu-roles"] == ["citizen"]
    assert {"401", "403", "201"} <= set(sign["responses"])
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_operations_routes_bypass_admission_so_document_no_503(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    assert "503" not in spec["paths"]["/healthz"]["get"]["responses"]
    assert "503" in spec["paths"]["/api/v1/petitions/{id}/signatures"]["post"]["responses"]


def test_query_parameters_are_listed(document: tuple[dict[str, Any], RouteRegistry]) -> None:
    spec, routes = document
    listing = next(r for r in routes if r.name == "petitions.list")
    assert listing.query is not None
    operation = spec["paths"]["/api/v1/petitions"]["get"]
    query = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    expected = {f.alias or name for name, f in listing.query.model_fields.items()}
    assert query == expected


def test_the_document_passes_the_openapi_spec_validator(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    validate(spec)
