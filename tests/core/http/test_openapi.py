"""GET /openapi.json: a valid OpenAPI 3.1 document that describes every registered route."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from core.identity import keys as identity_keys
from core.plugin_host import keys as plugin_host_keys
from core.plugin_host.routing import RouteRegistry
from tests.support.services import SHIPPED_REGISTER


@pytest.fixture
async def document(make_client: Any) -> tuple[dict[str, Any], RouteRegistry]:
    client = await make_client()
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    return body, client.app[plugin_host_keys.ROUTES]


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


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_parameter_has_a_description(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    undescribed = [
        (method, path, parameter["name"])
        for path, method, operation in operations(spec)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description")
    ]
    assert undescribed == []


def test_page_limits_state_the_maximum_and_cursors_say_they_are_server_issued(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    limits = cursors = 0
    for _, _, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]["anyOf"][0] if "anyOf" in parameter["schema"] else None
            if parameter["name"] == "limit":
                limits += 1
                assert schema is not None
                assert (schema["minimum"], schema["maximum"]) == (1, 100)
            if parameter["name"] == "cursor":
                cursors += 1
                assert "opaque and server-issued" in parameter["description"]
    assert limits >= 7
    assert cursors == limits


async def test_a_limit_above_the_stated_maximum_is_422(make_client: Any) -> None:
    client = await make_client()
    for path in ("/api/v1/petitions", "/api/v1/information", "/api/v1/consultations"):
        response = await client.get(path, params={"limit": "101"})
        assert response.status == 422, path
        assert (await client.get(path, params={"limit": "100"})).status == 200


def headers_of(spec: dict[str, Any], path: str, method: str, status: str) -> set[str]:
    return set(spec["paths"][path][method]["responses"][status].get("headers", {}))


def test_response_headers_are_described_where_they_are_sent(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    petitions = "/api/v1/petitions"
    assert {"Location", "RateLimit", "RateLimit-Policy"} <= headers_of(
        spec, petitions, "post", "201"
    )
    assert {"Retry-After", "RateLimit"} <= headers_of(spec, petitions, "post", "429")
    assert "Retry-After" in headers_of(spec, petitions, "post", "503")
    assert {"ETag", "Cache-Control"} <= headers_of(spec, f"{petitions}/{{id}}", "get", "200")
    assert "Link" in headers_of(spec, petitions, "get", "200")
    assert "Link" in headers_of(spec, "/api/v1/petitions.csv", "get", "200")
    assert "Link" in headers_of(spec, "/api/v1/information", "get", "200")
    assert "Link" not in headers_of(spec, f"{petitions}/{{id}}", "get", "200")
    assert "RateLimit" not in headers_of(spec, "/healthz", "get", "200")
    for _, _, operation in operations(spec):
        for response in operation["responses"].values():
            for header in response.get("headers", {}).values():
                assert header["description"]
                assert header["schema"]["type"] == "string"
                assert header.get("required", False) is False


def test_registered_codes_are_enums_of_the_agency_register(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    codes = sorted(SHIPPED_REGISTER["agencies"])
    schemas = spec["components"]["schemas"]
    assert schemas["PetitionCreate"]["properties"]["addressee"]["enum"] == codes
    request_create = next(
        s
        for name, s in schemas.items()
        if "agency" in s.get("properties", {}) and s["properties"]["agency"].get("enum")
    )
    assert request_create["properties"]["agency"]["enum"] == codes


async def test_the_enums_follow_the_configured_register(make_client: Any) -> None:
    client = await make_client(
        kazakhstan={
            "agencies": {
                "only-one": {
                    "names": {"kk": "Бір", "ru": "Один", "en": "Only one"},
                    "level": "republic",
                    "kind": "ministry",
                }
            }
        }
    )
    spec = await (await client.get("/openapi.json")).json()
    addressee = spec["components"]["schemas"]["PetitionCreate"]["properties"]["addressee"]
    assert "only-one" in addressee["enum"]
    assert addressee["enum"] == list(client.app[identity_keys.JURISDICTION].addressee_codes())


def test_idempotency_key_pattern_is_the_servers_rule(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    [key] = [
        p
        for p in spec["paths"]["/api/v1/petitions"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    ]
    pattern = re.compile(key["schema"]["pattern"])
    for accepted in (" ", "~", "a" * 255, "key-1 with spaces"):
        assert pattern.fullmatch(accepted), accepted
    for refused in ("", "a" * 256, "é", "\x7f", "tab\there", "\x00"):
        assert not pattern.fullmatch(refused), refused


def test_free_text_strings_state_that_nul_is_refused(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    title = spec["components"]["schemas"]["PetitionCreate"]["properties"]["title"]
    pattern = re.compile(title["pattern"])
    assert pattern.fullmatch("Publish the queues")
    assert not pattern.fullmatch("Publish\x00")
    [q] = [p for p in spec["paths"]["/api/v1/petitions"]["get"]["parameters"] if p["name"] == "q"]
    q_pattern = re.compile(q["schema"]["anyOf"][0]["pattern"])
    assert q_pattern.fullmatch(" ")
    assert not q_pattern.fullmatch("school\x00")


def test_a_csv_answer_is_documented_with_its_media_type(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    ok = spec["paths"]["/api/v1/petitions.csv"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/csv"]
    assert ok["content"]["text/csv"]["schema"]["type"] == "string"
    assert "signature_count" in ok["description"]


def test_a_stripped_string_needs_something_besides_white_space(
    document: tuple[dict[str, Any], RouteRegistry],
) -> None:
    spec, _ = document
    schemas = spec["components"]["schemas"]
    heading = next(
        branch
        for branch in schemas["SectionDraft"]["properties"]["heading"]["anyOf"]
        if branch.get("type") == "string"
    )
    pattern = re.compile(heading["pattern"])
    assert pattern.fullmatch(" Section one ")
    for blank in ("\n", " \t", "\x85\u3000", "a\x00"):
        assert not pattern.fullmatch(blank), repr(blank)
    # \x1f is not white space to the model's stripping, so it counts as content.
    assert pattern.fullmatch("\x1f")
