"""The Server header names the product only: no Python or aiohttp version."""

from __future__ import annotations

from typing import Any


async def test_answers_and_errors_name_the_server_without_a_version(make_client: Any) -> None:
    client = await make_client()
    for path in ("/healthz", "/api/v1/petitions/no-such-id", "/no/such/route"):
        response = await client.get(path)
        assert response.headers["Server"] == "Qatysu", path
