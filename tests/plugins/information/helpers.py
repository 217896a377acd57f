"""Steps that many information tests share: a client with the plugin, publishing, filing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from core import keys
from core.plugins import DEFAULT_PLUGINS
from plugins.information.tables import requests
from tests.conftest import agency, citizen

# Until the channel is a default plugin it is switched on by name, as any optional plugin is.
PLUGINS: dict[str, Any] = (
    {} if "plugins.information" in DEFAULT_PLUGINS else {"enabled": ["plugins.information"]}
)

ITEM = {
    "title": "Road repairs on Abai avenue",
    "body": "Resurfacing of Abai avenue between Dostyk and Furmanov starts on Monday.",
    "category": "roads",
    "language": "en",
}

REQUEST = {
    "agency": "almaty-akimat",
    "subject": "Snow clearing schedule",
    "text": "Please provide the snow clearing schedule for the Medeu district this winter.",
    "language": "en",
}


async def information_client(make_client: Any, database_url: str | None, **sections: Any) -> Any:
    return await make_client(database_url, plugins=PLUGINS, **sections)


async def publish(client: Any, code: str = "almaty-akimat", **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/information", json={**ITEM, **fields}, headers=agency(code)
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def file_request(client: Any, requester: int = 1, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/information-requests", json={**REQUEST, **fields}, headers=citizen(requester)
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def act(
    client: Any, request_id: str, action: str, code: str = "almaty-akimat", **body: Any
) -> Any:
    """An agency's progress, answer or refusal on a request."""
    return await client.post(
        f"/api/v1/information-requests/{request_id}/{action}", json=body, headers=agency(code)
    )


async def set_due_at(client: Any, request_id: str, due_at: dt.datetime) -> None:
    """Move a request's due date straight in the database, as time passing would."""

    async def write(conn: Any) -> None:
        await conn.execute(
            sa.update(requests).where(requests.c.id == request_id).values(due_at=due_at)
        )

    await client.app[keys.WRITER].submit(write)
