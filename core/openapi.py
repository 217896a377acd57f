"""The OpenAPI 3.1 document, generated from the routes plugins registered and their models."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic.json_schema import models_json_schema

from core.routing import Document

if TYPE_CHECKING:
    from pydantic import BaseModel

    from core.routing import RouteRegistry, RouteSpec

REF_TEMPLATE = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def build_openapi(routes: RouteRegistry, *, version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = set()
    for spec in routes:
        for model in (spec.body, spec.query, *spec.responses.values()):
            if isinstance(model, type):
                models.add(model)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, schemas = models_json_schema([(m, "validation") for m in ordered], ref_template=REF_TEMPLATE)
    components: dict[str, Any] = dict(schemas.get("$defs", {}))
    components["Problem"] = PROBLEM_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        path = _PATH_PARAM.sub(r"{\1}", spec.path)
        paths.setdefault(path, {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Qatysu",
            "version": version,
            "description": "E-participation: information, consultation and petitions.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation(spec: RouteSpec) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": spec.name,
        "summary": spec.summary,
        "tags": list(spec.tags),
        "x-qatysu-priority": spec.policy.priority.name.lower(),
    }
    if spec.policy.rate is not None:
        operation["x-qatysu-rate"] = {
            "policy": spec.policy.rate.name,
            "rate": spec.policy.rate.rate,
            "burst": spec.policy.rate.burst,
        }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(spec.path)
    ]
    if spec.idempotent:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "a retry with the same key within 24 hours gets the first "
                "answer and creates nothing (1 to 255 printable ASCII characters)",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    if spec.query is not None:
        # A query parameter's schema is inlined: enums of different plugins share names like
        # "Status", so a reference into components could name the wrong one.
        query_schema = spec.query.model_json_schema(ref_template="#/$defs/{model}")
        definitions = query_schema.get("$defs", {})
        for name, field in spec.query.model_fields.items():
            parameters.append(
                {
                    "name": field.alias or name,
                    "in": "query",
                    "required": field.is_required(),
                    "description": field.description or "",
                    "schema": _inline(
                        query_schema["properties"].get(field.alias or name, {}), definitions
                    ),
                }
            )
    if parameters:
        operation["parameters"] = parameters
    if spec.roles is not None:
        operation["security"] = [{"bearer": []}]
        operation["x-qatysu-roles"] = sorted(spec.roles)
    if spec.query_roles:
        operation["x-qatysu-query-roles"] = [
            {"roles": sorted(wider.roles), "when": wider.description} for wider in spec.query_roles
        ]
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{spec.body.__name__}"}
                }
            },
        }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    responses: dict[str, Any] = {}
    for status, model in sorted(spec.responses.items()):
        if isinstance(model, Document):
            responses[str(status)] = {
                "description": model.description,
                "content": {model.media_type: {"schema": {"type": "string"}}},
            }
        elif isinstance(model, str):
            responses[str(status)] = {"description": model}
            if status >= 400:
                responses[str(status)]["content"] = problem
        else:
            responses[str(status)] = {
                "description": model.__doc__.strip().splitlines()[0] if model.__doc__ else "",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                    }
                },
            }
    for status, description in _problem_statuses(spec).items():
        responses.setdefault(str(status), {"description": description, "content": problem})
    operation["responses"] = responses
    return operation


def _problem_statuses(spec: RouteSpec) -> dict[int, str]:
    # A bad token is refused on every route, whether the route needs one or not.
    statuses: dict[int, str] = {401: "Bad token"}
    if _PATH_PARAM.search(spec.path):
        statuses[404] = "No such resource"
        statuses[422] = "A path parameter holds a character no database stores"
    if spec.body is not None:
        statuses.update(
            {400: "Malformed JSON", 413: "Body too large", 415: "Not JSON", 422: "Invalid fields"}
        )
    elif spec.query is not None:
        statuses[400] = "A cursor this server did not issue"
        statuses[422] = "Invalid query parameters"
    if spec.roles is not None:
        statuses.update({401: "Missing or bad token", 403: "Wrong role"})
    if spec.idempotent:
        statuses[400] = "Malformed body or Idempotency-Key"
        statuses[409] = "A request with this Idempotency-Key is still in progress"
        statuses[422] = "Invalid fields, or an Idempotency-Key used for a different request"
    if spec.policy.rate is not None:
        statuses[429] = "Over the client's rate"
    if not spec.policy.bypass:
        statuses[503] = (
            "Shed under load, storage unavailable, or a write whose outcome is unknown "
            "(/problems/outcome-unknown: retry with the same Idempotency-Key)"
        )
    return statuses


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every local ``$ref`` replaced by the definition it names."""
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema
