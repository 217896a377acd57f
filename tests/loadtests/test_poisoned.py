"""The poisoned signing flood: valid and poisoned requests are told apart and counted exactly."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from loadtests.poisoned import flood

SECRET = "poisoned-flood-test-secret-0123456789abcdef"


@pytest.mark.parametrize(("shape", "in_flight"), [("burst", 1), ("steady", 3)])
async def test_every_request_is_counted_by_kind_with_its_refusal_detail(
    aiohttp_server: Any, shape: str, in_flight: int
) -> None:
    seen: list[str] = []

    async def sign(request: web.Request) -> web.Response:
        if request.match_info["id"] == "\x00":
            return web.json_response({"detail": "NUL"}, status=422)
        seen.append(request.headers["Authorization"])
        if len(seen) == 3:
            return web.json_response({"detail": "not saved"}, status=503)
        return web.json_response({"signature_count": 1}, status=201)

    app = web.Application()
    app.router.add_post("/api/v1/petitions/{id}/signatures", sign)
    server = await aiohttp_server(app)
    valid, poisoned, refusals = await flood(
        str(server.make_url("")).rstrip("/"),
        "p1",
        SECRET,
        valid=10,
        every=4,
        shape=shape,
        in_flight=in_flight,
    )
    assert valid == {201: 9, 503: 1}
    assert poisoned == {422: 2}
    assert refusals == {"not saved": 1}
    assert len(set(seen)) == 10
