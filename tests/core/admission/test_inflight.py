"""Caps on the requests one client has in progress: per address and per citizen, 429 past them."""

from __future__ import annotations

import pytest

from core.admission.inflight import InFlight, TooManyInFlight
from core.observability import keys as observability_keys
from tests.support.identities import citizen
from tests.support.petitions import PETITION
from tests.support.slowbodies import status_of

SLOW = {"body_grace": 0.5, "body_min_rate": 100.0}


def test_a_client_at_its_cap_is_refused_until_one_of_its_requests_ends() -> None:
    inflight = InFlight(per_address=2, per_citizen=5)
    first = inflight.take("203.0.113.7", None)
    inflight.take("203.0.113.7", "citizen:a")
    with pytest.raises(TooManyInFlight) as refused:
        inflight.take("203.0.113.7", "citizen:b")
    assert refused.value.kind == "address"
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "1"}
    assert inflight.holders.count("citizen:b") == 0  # a refused request counts nowhere
    inflight.take("198.51.100.1", None)  # another address is not affected
    first.release()
    first.release()  # a second release gives nothing back twice
    inflight.take("203.0.113.7", "citizen:b")
    assert inflight.addresses.count("203.0.113.7") == 2


def test_a_citizen_is_capped_across_addresses() -> None:
    inflight = InFlight(per_address=10, per_citizen=2)
    inflight.take("203.0.113.7", "citizen:a")
    inflight.take("198.51.100.1", "citizen:a")
    with pytest.raises(TooManyInFlight) as refused:
        inflight.take("192.0.2.1", "citizen:a")
    assert refused.value.kind == "citizen"
    assert inflight.addresses.count("192.0.2.1") == 0


def test_a_cap_of_zero_is_no_cap_and_idle_clients_leave_nothing_behind() -> None:
    inflight = InFlight(per_address=0, per_citizen=0)
    seats = [inflight.take("203.0.113.7", "citizen:a") for _ in range(1000)]
    assert inflight.addresses.count("203.0.113.7") == 1000
    for seat in seats:
        seat.release()
    assert (len(inflight.addresses), len(inflight.holders)) == (0, 0)


async def test_a_citizen_over_its_cap_gets_429_while_another_is_served(
    make_client, slow_bodies
) -> None:
    client = await make_client(
        admission={"enabled": True, "max_inflight_per_citizen": 2}, server=SLOW
    )
    held = [await slow_bodies(client.server.port, headers=citizen(1)) for _ in range(2)]
    refused = await client.post("/api/v1/petitions", json=PETITION, headers=citizen(1))
    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    assert refused.headers["Retry-After"] == "1"
    assert await refused.json() == {
        "type": "/problems/rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "too many requests of this account are in progress; wait for one to finish",
    }
    other = await client.post("/api/v1/petitions", json=PETITION, headers=citizen(2))
    assert other.status == 201
    # Once its slow bodies are cut, the citizen may file again.
    assert [status_of(await request.answer(within=5)) for request in held] == [408, 408]
    again = await client.post("/api/v1/petitions", json=PETITION, headers=citizen(1))
    assert again.status == 201
    metrics = client.app[observability_keys.METRICS].registry
    assert (
        metrics.get_sample_value(
            "qatysu_admission_rejected_total",
            {"reason": "inflight_citizen", "priority": "critical"},
        )
        == 1.0
    )


async def test_an_address_over_its_cap_gets_429_behind_a_trusted_proxy(
    make_client, slow_bodies
) -> None:
    client = await make_client(
        admission={"enabled": True, "max_inflight_per_address": 2},
        server={**SLOW, "trusted_proxies": ["127.0.0.1/32"]},
    )
    crowd = {"X-Forwarded-For": "203.0.113.7"}
    for n in (1, 2):
        await slow_bodies(client.server.port, headers={**crowd, **citizen(n)})
    refused = await client.get("/api/v1/petitions", headers=crowd)
    assert refused.status == 429
    assert (await refused.json())["detail"] == (
        "too many requests from this address are in progress; wait for one to finish"
    )
    elsewhere = await client.get("/api/v1/petitions", headers={"X-Forwarded-For": "203.0.113.8"})
    assert elsewhere.status == 200


async def test_a_forged_forwarding_header_does_not_escape_the_address_cap(
    make_client, slow_bodies
) -> None:
    client = await make_client(
        admission={"enabled": True, "max_inflight_per_address": 2}, server=SLOW
    )
    for n in (1, 2):
        await slow_bodies(
            client.server.port, headers={"X-Forwarded-For": f"203.0.113.{n}", **citizen(n)}
        )
    forged = await client.get("/api/v1/petitions", headers={"X-Forwarded-For": "203.0.113.9"})
    assert forged.status == 429
