"""Steps through the consultations API, and moving a consultation's times as if it had aged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from core.http import keys as http_keys
from core.http.cache import cache_key
from core.storage import keys as storage_keys
from plugins.consultations.settings import SECTION
from plugins.consultations.tables import consultations
from tests.support.consultations import BASE, now
from tests.support.identities import citizen

Step = Callable[..., Awaitable[Any]]


@pytest.fixture
def posted_comment(comment: Step) -> Step:
    async def posted(client: Any, consultation_id: str, n: int = 1, **fields: Any) -> Any:
        response = await comment(client, consultation_id, n, **fields)
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    return posted


@pytest.fixture
def vote() -> Step:
    async def voted(client: Any, consultation_id: str, n: int, position: str) -> Any:
        return await client.post(
            f"{BASE}/{consultation_id}/votes",
            json={"position": position},
            headers=citizen(n),
        )

    return voted


@pytest.fixture
def read() -> Step:
    async def read_one(client: Any, consultation_id: str) -> dict[str, Any]:
        response = await client.get(f"{BASE}/{consultation_id}")
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    return read_one


async def _rewrite(client: Any, consultation_id: str, **values: Any) -> None:
    async def write(conn: Any) -> None:
        await conn.execute(
            sa.update(consultations).where(consultations.c.id == consultation_id).values(**values)
        )

    await client.app[storage_keys.WRITER].submit(write)
    client.app[http_keys.CACHE].invalidate(cache_key(SECTION, consultation_id))


@pytest.fixture
def move_times() -> Step:
    """Travel in time: set the stored times directly, as if the consultation had aged."""

    async def move(
        client: Any,
        consultation_id: str,
        *,
        opens_at: dt.datetime | None = None,
        closes_at: dt.datetime | None = None,
    ) -> None:
        values = {
            name: value
            for name, value in (("opens_at", opens_at), ("closes_at", closes_at))
            if value is not None
        }
        await _rewrite(client, consultation_id, **values)

    return move


@pytest.fixture
def past_minimum_discussion() -> Step:
    """Age the consultation: opened and created ``days`` ago, still open."""

    async def age(client: Any, consultation_id: str, days: int = 10) -> None:
        earlier = now() - dt.timedelta(days=days, seconds=1)
        await _rewrite(client, consultation_id, opens_at=earlier, created_at=earlier)

    return age


@pytest.fixture
def close_by_deadline(move_times: Step) -> Step:
    async def close(client: Any, consultation_id: str) -> None:
        await move_times(
            client,
            consultation_id,
            opens_at=now() - dt.timedelta(days=15),
            closes_at=now() - dt.timedelta(seconds=1),
        )

    return close


@pytest.fixture
def fetch_rows() -> Step:
    """The rows a query reads from the app's database."""

    async def fetch(client: Any, query: Any) -> list[Any]:
        async with client.app[storage_keys.DATABASE].read() as conn:
            return list((await conn.execute(query)).all())

    return fetch
