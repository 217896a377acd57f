"""Failed authentications are charged to the client's address: past the budget, 429."""

from __future__ import annotations

from typing import Any

from tests.support.identities import auth, citizen

BUDGET = {"auth_failures": {"rate": 0.01, "burst": 3}}
BAD = auth("eyJhbGciOiJIUzI1NiJ9.e30.AAAA")


async def test_bad_tokens_past_the_address_budget_get_429_with_retry_after(
    make_client: Any,
) -> None:
    client = await make_client(admission={"enabled": True, "rate_overrides": BUDGET})
    statuses = [(await client.get("/api/v1/petitions", headers=BAD)).status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    refused = await client.get("/api/v1/petitions", headers=BAD)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["detail"].startswith(
        "too many failed authentications from this address"
    )


async def test_a_malformed_authorization_header_counts_as_a_failure(make_client: Any) -> None:
    client = await make_client(admission={"enabled": True, "rate_overrides": BUDGET})
    header = {"Authorization": "Basic dXNlcjpwYXNz"}
    statuses = [(await client.get("/api/v1/petitions", headers=header)).status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_valid_tokens_are_not_charged_to_the_failure_budget(make_client: Any) -> None:
    client = await make_client(admission={"enabled": True, "rate_overrides": BUDGET})
    for n in range(6):
        response = await client.get("/api/v1/petitions", headers=citizen(n + 1))
        assert response.status == 200
    assert (await client.get("/api/v1/petitions", headers=BAD)).status == 401


async def test_failures_on_a_route_that_bypasses_admission_count_too(make_client: Any) -> None:
    client = await make_client(admission={"enabled": True, "rate_overrides": BUDGET})
    statuses = [(await client.get("/healthz", headers=BAD)).status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_with_rate_limits_off_failures_stay_401(make_client: Any) -> None:
    client = await make_client(
        admission={"enabled": True, "ratelimit_enabled": False, "rate_overrides": BUDGET}
    )
    statuses = [(await client.get("/api/v1/petitions", headers=BAD)).status for _ in range(5)]
    assert statuses == [401] * 5
