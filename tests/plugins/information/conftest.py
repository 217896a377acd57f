"""Steps through the information API: publishing, filing a request, an agency acting on it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from core.storage import keys as storage_keys
from plugins.information.tables import requests
from tests.support.identities import agency, citizen
from tests.support.information import ITEM, REQUEST

Step = Callable[..., Awaitable[Any]]


@pytest.fixture
def publish() -> Step:
    async def published(client: Any, code: str = "almaty-akimat", **fields: Any) -> Any:
        response = await client.post(
            "/api/v1/information", json={**ITEM, **fields}, headers=agency(code)
        )
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    return published


@pytest.fixture
def file_request() -> Step:
    async def filed(client: Any, requester: int = 1, **fields: Any) -> Any:
        response = await client.post(
            "/api/v1/information-requests",
            json={**REQUEST, **fields},
            headers=citizen(requester),
        )
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    return filed


@pytest.fixture
def act() -> Step:
    """An agency's progress, answer or refusal on a request."""

    async def acted(
        client: Any, request_id: str, action: str, code: str = "almaty-akimat", **body: Any
    ) -> Any:
        return await client.post(
            f"/api/v1/information-requests/{request_id}/{action}", json=body, headers=agency(code)
        )

    return acted


@pytest.fixture
def set_due_at() -> Step:
    """Move a request's due date straight in the database, as time passing would."""

    async def move(client: Any, request_id: str, due_at: dt.datetime) -> None:
        async def write(conn: Any) -> None:
            await conn.execute(
                sa.update(requests).where(requests.c.id == request_id).values(due_at=due_at)
            )

        await client.app[storage_keys.WRITER].submit(write)

    return move
