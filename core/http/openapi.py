"""The OpenAPI 3.1 document, generated from the routes plugins registered and their models."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel as PydanticModel
from pydantic.json_schema import models_json_schema

from core.plugin_host.routing import Document

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import BaseModel

    from core.plugin_host.routing import RouteRegistry, RouteSpec

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


# A field the server refuses unless it holds a registered agency code carries this mark
# (``json_schema_extra=REGISTERED_AGENCY``); the document turns it into an enum of the codes of
# the app's register.
REGISTER_MARK = "x-qatysu-register"
REGISTERED_AGENCY: dict[str, Any] = {REGISTER_MARK: "agencies"}

NO_NUL_PATTERN = "^[^\\x00]*$"
"""No NUL character: PostgreSQL cannot store one, so every string refuses it
(``core.wire.bounds``)."""
# Unicode White_Space, which a model with str_strip_whitespace strips before checking lengths.
_WHITE_SPACE = (
    "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
NOT_BLANK_PATTERN = f"^[^\\x00]*[^\\x00{_WHITE_SPACE}][^\\x00]*$"
"""No NUL, and something besides white space: what a stripped string of 1 or more needs."""
IDEMPOTENCY_KEY_PATTERN = "^[ -~]{1,255}$"
"""1 to 255 printable ASCII characters, as ``core.plugin_host.idempotency`` checks."""

_STRING = {"type": "string"}
HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit-Policy": {
        "description": "the route's rate budget for this client "
        "(draft-ietf-httpapi-ratelimit-headers): name;q=burst;w=window seconds",
        "schema": _STRING,
    },
    "RateLimit": {
        "description": "what is left of the budget: name;r=remaining;t=seconds until it is "
        "full again (on a 429, until the next request is allowed)",
        "schema": _STRING,
    },
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "ETag": {
        "description": "the document's version; send it back as If-None-Match for a 304",
        "schema": _STRING,
    },
    "Cache-Control": {"description": "how long a cache may keep the answer", "schema": _STRING},
    "Location": {"description": "the path of the resource just created", "schema": _STRING},
    "Link": {
        "description": 'RFC 8288 links: rel="self" to this page, rel="next" to the next one '
        "while there is one",
        "schema": _STRING,
    },
    "X-Request-Id": {
        "description": "this request's id, as sent in X-Request-Id or made by the server; "
        "it names the request in the server's log",
        "schema": _STRING,
    },
    "Content-Language": {
        "description": "the language of title and detail (kk, ru or en, by Accept-Language)",
        "schema": _STRING,
    },
}


def build_openapi(
    routes: RouteRegistry, *, version: str, agency_codes: Sequence[str] = ()
) -> dict[str, Any]:
    """The document for ``routes``; ``agency_codes`` are the register's, for the enums."""
    models: set[type[BaseModel]] = set()
    for spec in routes:
        for model in (spec.body, spec.query, *spec.responses.values()):
            if isinstance(model, type):
                models.add(model)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, schemas = models_json_schema([(m, "validation") for m in ordered], ref_template=REF_TEMPLATE)
    components: dict[str, Any] = dict(schemas.get("$defs", {}))
    for model in _with_nested(ordered):
        if model.model_config.get("str_strip_whitespace") and model.__name__ in components:
            components[model.__name__] = _not_blank(components[model.__name__])
    components["Problem"] = PROBLEM_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        path = _PATH_PARAM.sub(r"{\1}", spec.path)
        paths.setdefault(path, {})[spec.method.lower()] = _operation(spec)
    document = {
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
    registered: dict[str, Any] = _registered(_no_nul(document), sorted(agency_codes))
    return registered


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
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": f"the {name} the server gave the resource",
            "schema": {"type": "string"},
        }
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
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": IDEMPOTENCY_KEY_PATTERN,
                },
            }
        )
    if spec.query is not None:
        # A query parameter's schema is inlined: enums of different plugins share names like
        # "Status", so a reference into components could name the wrong one.
        query_schema = spec.query.model_json_schema(ref_template="#/$defs/{model}")
        if spec.query.model_config.get("str_strip_whitespace"):
            query_schema = _not_blank(query_schema)
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
    for code, response in responses.items():
        names = _response_headers(spec, int(code))
        if names:
            response["headers"] = {name: HEADERS[name] for name in names}
    operation["responses"] = responses
    return operation


def _response_headers(spec: RouteSpec, status: int) -> list[str]:
    """The headers an answer of ``status`` on ``spec``'s route may carry, none required: the
    rate headers, for instance, are absent while admission is off."""
    names = ["X-Request-Id"]
    if spec.policy.rate is not None and not spec.policy.bypass:
        names += ["RateLimit-Policy", "RateLimit"]
    if status in {429, 503} or (status == 409 and spec.idempotent):
        names.append("Retry-After")
    if status >= 400:
        names.append("Content-Language")
    declared = spec.responses.get(status)
    if status == 200 and 304 in spec.responses:
        names += ["ETag", "Cache-Control"]
    if status == 201 and spec.idempotent:
        names.append("Location")
    if status == 200 and _is_page(declared):
        names.append("Link")
    return names


def _is_page(declared: object) -> bool:
    if isinstance(declared, Document):
        return declared.media_type == "text/csv"
    return isinstance(declared, type) and "next_cursor" in getattr(declared, "model_fields", {})


def _with_nested(models: Sequence[type[BaseModel]]) -> set[type[BaseModel]]:
    """``models`` and every model their fields hold, at any depth."""
    found: set[type[BaseModel]] = set()
    pending = list(models)
    while pending:
        model = pending.pop()
        if model in found:
            continue
        found.add(model)
        for field in model.model_fields.values():
            for argument in _type_arguments(field.annotation):
                if isinstance(argument, type) and issubclass(argument, PydanticModel):
                    pending.append(argument)
    return found


def _type_arguments(annotation: Any) -> Iterator[Any]:
    yield annotation
    for argument in get_args(annotation):
        yield from _type_arguments(argument)


def _not_blank(schema: dict[str, Any]) -> dict[str, Any]:
    """A stripping model's schema: each of its own string properties with a minimum length
    needs something besides white space (stripped first, white space alone is too short)."""
    properties = {}
    for name, prop in schema.get("properties", {}).items():
        branches = prop.get("anyOf", [prop])
        for branch in branches:
            if branch.get("type") == "string" and branch.get("minLength", 0) >= 1:
                branch.setdefault("pattern", NOT_BLANK_PATTERN)
        properties[name] = prop
    return {**schema, "properties": properties} if properties else schema


def _no_nul(node: Any) -> Any:
    """``node`` with NO_NUL_PATTERN on every free-form string schema (one without a pattern,
    format, enum or const of its own)."""
    if isinstance(node, list):
        return [_no_nul(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _no_nul(value) for key, value in node.items()}
    if result.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(result):
        result["pattern"] = NO_NUL_PATTERN
    return result


def _registered(node: Any, codes: list[str]) -> Any:
    """``node`` with each registered-code mark turned into an enum of ``codes``."""
    if isinstance(node, list):
        return [_registered(item, codes) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _registered(value, codes) for key, value in node.items()}
    if result.get(REGISTER_MARK) == "agencies" and codes:
        nullable = any(branch == {"type": "null"} for branch in result.get("anyOf", ()))
        result["enum"] = [*codes, None] if nullable else list(codes)
    return result


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
        statuses[408] = "The body did not arrive within its deadline"
    elif spec.query is not None:
        statuses[400] = "A cursor this server did not issue"
        statuses[422] = "Invalid query parameters"
    if spec.roles is not None:
        statuses.update({401: "Missing or bad token", 403: "Wrong role"})
    if spec.idempotent:
        statuses[400] = "Malformed body or Idempotency-Key"
        statuses[409] = "A request with this Idempotency-Key is still in progress"
        statuses[422] = "Invalid fields, or an Idempotency-Key used for a different request"
    if not spec.policy.bypass:
        # Admission's 429s: a route bypassing admission is neither rate-limited nor capped.
        statuses[429] = (
            "Over the client's rate, or too many of its requests in progress"
            if spec.policy.rate is not None
            else "Too many of the client's requests in progress"
        )
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
