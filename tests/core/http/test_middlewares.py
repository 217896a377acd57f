"""The envelope and identity middlewares, and the order they run in around admission."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp import web

from core.admission import keys as admission_keys
from core.admission.middleware import admission_middleware, triage_middleware
from core.http import keys as http_keys
from core.http.compression import compression_middleware
from core.http.middlewares import envelope_middleware, identity_middleware
from core.identity import keys as identity_keys
from core.identity.identities import Identity
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.priority import Priority, RatePolicy
from core.plugin_host.routing import RoutePolicy
from core.storage.writer import Writer
from core.wire.bodies import json_response
from tests.support.identities import auth, citizen

FORGED = auth("not.a.jwt")
METRICS_TOKEN = "metrics-token-that-is-long-enough-0123456789"


class CountingProvider:
    """An identity provider that counts the tokens it is asked about, then lets core answer;
    and routes that answer with the identity they were given."""

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl(tryfirst=True)
    def qatysu_identify(self, request: web.Request, token: str) -> Identity | None:
        """Count the token; core's provider verifies it."""
        self.asked += 1
        return None

    @hookimpl
    def qatysu_add_routes(self, routes: Any, app: web.Application) -> None:
        async def whoami(request: web.Request) -> web.Response:
            identity = request[identity_keys.IDENTITY]
            return json_response({"role": None if identity is None else identity.role})

        async def broken(request: web.Request) -> web.Response:
            raise RuntimeError("a bug")

        for method, priority in (("GET", Priority.NORMAL), ("POST", Priority.CRITICAL)):
            routes.add(
                method,
                "/test/whoami/{name}",
                whoami,
                name=f"test.whoami.{method.lower()}",
                summary="who is asking",
                policy=RoutePolicy(
                    priority=priority, rate=RatePolicy(name="test-whoami", rate=0.01, burst=2)
                ),
            )
        routes.add(
            "GET", "/test/broken", broken, name="test.broken", summary="fails", policy=RoutePolicy()
        )


ADMISSION = {"enabled": True}


async def test_with_admission_on_identity_runs_between_triage_and_admission(
    make_client: Any,
) -> None:
    client = await make_client(admission=ADMISSION)
    assert list(client.app.middlewares) == [
        compression_middleware,
        envelope_middleware,
        triage_middleware,
        identity_middleware,
        admission_middleware,
    ]


async def test_with_admission_off_only_the_envelope_and_identity_run(make_client: Any) -> None:
    client = await make_client(admission={"enabled": False})
    assert list(client.app.middlewares) == [
        compression_middleware,
        envelope_middleware,
        identity_middleware,
    ]


@pytest.mark.parametrize("admission", [True, False], ids=["admission-on", "admission-off"])
async def test_a_valid_token_becomes_the_requests_identity_and_none_is_anonymous(
    make_client: Any, admission: bool
) -> None:
    client = await make_client(
        extra_plugins=(CountingProvider(),), admission={"enabled": admission}
    )
    signed_in = await client.get("/test/whoami/a", headers=citizen(1))
    anonymous = await client.get("/test/whoami/a")
    assert (signed_in.status, await signed_in.json()) == (200, {"role": "citizen"})
    assert (anonymous.status, await anonymous.json()) == (200, {"role": None})


async def test_a_forged_token_is_401_problem_json(make_client: Any) -> None:
    client = await make_client(extra_plugins=(CountingProvider(),), admission=ADMISSION)
    response = await client.get("/test/whoami/a", headers=FORGED)
    assert response.status == 401
    assert response.content_type == "application/problem+json"


async def test_a_request_past_its_deadline_is_dropped_before_its_token_is_verified(
    make_client: Any,
) -> None:
    provider = CountingProvider()
    client = await make_client(extra_plugins=(provider,), admission=ADMISSION)
    # Its bytes arrived three seconds ago: past the default deadline of two.
    client.app[http_keys.GUARD].arrival = lambda transport: time.monotonic() - 3.0  # type: ignore[method-assign]
    response = await client.get("/test/whoami/a", headers=FORGED)
    assert response.status == 503
    assert (await response.json())["detail"] == (
        "the server is overloaded (deadline); try again shortly"
    )
    assert provider.asked == 0


async def test_a_write_while_storage_is_saturated_is_refused_before_its_token_is_verified(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = CountingProvider()
    client = await make_client(extra_plugins=(provider,), admission=ADMISSION)
    monkeypatch.setattr(Writer, "pressure", property(lambda writer: 1.0))
    admission = client.app[admission_keys.ADMISSION]
    admission.writer_pressure = 1.0  # the observer's next tick reads the same
    write = await client.post("/test/whoami/a", headers=FORGED)
    read = await client.get("/test/whoami/a", headers=citizen(1))
    assert write.status == 503
    assert (await write.json())["detail"] == "storage is saturated; try again shortly"
    assert (read.status, provider.asked) == (200, 1)


async def test_the_rate_limit_keys_a_citizen_by_the_verified_token(make_client: Any) -> None:
    provider = CountingProvider()
    client = await make_client(extra_plugins=(provider,), admission=ADMISSION)
    first = [(await client.get("/test/whoami/a", headers=citizen(1))).status for _ in range(3)]
    other = await client.get("/test/whoami/a", headers=citizen(2))
    forged = await client.get("/test/whoami/a", headers=FORGED)
    assert first == [200, 200, 429]
    assert other.status == 200
    # A bad token is refused as such, not counted against anyone's rate.
    assert forged.status == 401
    assert provider.asked == 5


async def test_metrics_behind_their_own_token_are_not_taken_for_a_jwt(make_client: Any) -> None:
    client = await make_client(
        admission=ADMISSION,
        metrics={"exposure": "bearer_token", "bearer_token": METRICS_TOKEN},
    )
    response = await client.get("/metrics", headers=auth(METRICS_TOKEN))
    assert response.status == 200
    assert (await client.get("/metrics", headers=FORGED)).status == 401


async def test_requests_are_counted_by_route_template_with_the_status_the_client_got(
    make_client: Any,
) -> None:
    client = await make_client(extra_plugins=(CountingProvider(),), admission=ADMISSION)
    await client.get("/test/whoami/a")
    await client.get("/test/whoami/b")
    await client.get("/test/broken")
    metrics = await (await client.get("/metrics")).text()
    assert (
        'qatysu_http_requests_total{method="GET",route="/test/whoami/{name}",status="200"} 2.0'
        in metrics
    )
    assert 'qatysu_http_requests_total{method="GET",route="/test/broken",status="500"} 1.0' in (
        metrics
    )


async def test_a_path_parameter_no_database_stores_is_422_before_the_handler(
    make_client: Any,
) -> None:
    client = await make_client(extra_plugins=(CountingProvider(),), admission=ADMISSION)
    response = await client.get("/test/whoami/a%00b")
    assert response.status == 422
    assert response.content_type == "application/problem+json"
