"""CORS: only the configured origins, preflights answered, the API's headers readable."""

from __future__ import annotations

from typing import Any

import pytest

from core.settings import SettingsError

PORTAL = "https://portal.example.kz"
PREFLIGHT = {
    "Origin": PORTAL,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


async def test_a_preflight_from_a_configured_origin_is_answered_with_the_paths_methods(
    make_client: Any,
) -> None:
    client = await make_client(server={"cors_origins": [PORTAL]})
    response = await client.options("/api/v1/petitions", headers=PREFLIGHT)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == PORTAL
    assert response.headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST"
    allowed = {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"Authorization", "Content-Type", "Idempotency-Key"} <= allowed
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert response.headers["Vary"] == "Origin"


async def test_answers_to_a_configured_origin_expose_the_apis_headers(make_client: Any) -> None:
    client = await make_client(server={"cors_origins": [PORTAL]})
    response = await client.get("/api/v1/petitions", headers={"Origin": PORTAL})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == PORTAL
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"RateLimit", "RateLimit-Policy", "ETag", "Location", "Link", "Retry-After"} <= exposed
    assert "Origin" in response.headers.getall("Vary")


async def test_an_error_answer_to_a_configured_origin_is_readable_by_it(make_client: Any) -> None:
    client = await make_client(server={"cors_origins": [PORTAL]})
    response = await client.get("/api/v1/petitions/no-such-id", headers={"Origin": PORTAL})
    assert response.status == 404
    assert response.headers["Access-Control-Allow-Origin"] == PORTAL


async def test_another_origin_gets_no_cors_headers_and_its_preflight_is_405(
    make_client: Any,
) -> None:
    client = await make_client(server={"cors_origins": [PORTAL]})
    other = {**PREFLIGHT, "Origin": "https://evil.example"}
    preflight = await client.options("/api/v1/petitions", headers=other)
    assert preflight.status == 405
    assert "Access-Control-Allow-Origin" not in preflight.headers
    response = await client.get("/api/v1/petitions", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_by_default_no_origin_is_allowed(make_client: Any) -> None:
    client = await make_client()
    response = await client.options("/api/v1/petitions", headers=PREFLIGHT)
    assert response.status == 405
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_a_preflight_for_a_path_no_route_has_is_404(make_client: Any) -> None:
    client = await make_client(server={"cors_origins": [PORTAL]})
    response = await client.options("/api/v1/nothing-here", headers=PREFLIGHT)
    assert response.status == 404
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("origin", ["portal.example.kz", "https://portal.example.kz/", "*"])
def test_an_origin_that_is_not_scheme_and_host_is_refused_at_start(
    make_settings: Any, origin: str
) -> None:
    with pytest.raises(SettingsError, match="cors_origins"):
        make_settings(server={"cors_origins": [origin]})
