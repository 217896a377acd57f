"""Steps that many consultation tests share: open a consultation, comment, vote, move times."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from core import keys
from core.cache import cache_key
from core.plugins import DEFAULT_PLUGINS
from plugins.consultations.settings import SECTION
from plugins.consultations.tables import consultations
from tests.conftest import agency, citizen

PLUGIN = "plugins.consultations"
BASE = "/api/v1/consultations"

DRAFT = {
    "title": "Draft Rules for enrolment in schools",
    "summary": "One online queue for school places.",
    "sections": [
        {"heading": "General provisions", "text": "These Rules set how parents apply."},
        {"heading": "Applications", "text": "An application is filed online."},
        {"text": "Places are offered in the order applications were filed."},
    ],
}


def plugin_settings(*names: str) -> dict[str, Any]:
    """``[plugins]`` enabling the consultations plugin (and ``names``) unless already default."""
    wanted = [name for name in (PLUGIN, *names) if name not in DEFAULT_PLUGINS]
    return {"enabled": wanted}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def window(
    *, opens_in: dt.timedelta = dt.timedelta(minutes=-1), days: float = 14
) -> dict[str, str]:
    opens_at = now() + opens_in
    return {
        "opens_at": opens_at.isoformat(),
        "closes_at": (opens_at + dt.timedelta(days=days)).isoformat(),
    }


async def open_consultation(
    client: Any, code: str = "almaty-akimat", **fields: Any
) -> dict[str, Any]:
    response = await client.post(BASE, json={**DRAFT, **window(), **fields}, headers=agency(code))
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def comment(client: Any, consultation_id: str, n: int = 1, **fields: Any) -> Any:
    body = {"text": "Please publish the queue.", **fields}
    return await client.post(f"{BASE}/{consultation_id}/comments", json=body, headers=citizen(n))


async def posted_comment(
    client: Any, consultation_id: str, n: int = 1, **fields: Any
) -> dict[str, Any]:
    response = await comment(client, consultation_id, n, **fields)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def vote(
    client: Any, consultation_id: str, n: int, position: str, method: str = "PUT"
) -> Any:
    return await client.request(
        method, f"{BASE}/{consultation_id}/votes", json={"position": position}, headers=citizen(n)
    )


async def read(client: Any, consultation_id: str) -> dict[str, Any]:
    response = await client.get(f"{BASE}/{consultation_id}")
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def move_times(
    client: Any,
    consultation_id: str,
    *,
    opens_at: dt.datetime | None = None,
    closes_at: dt.datetime | None = None,
) -> None:
    """Travel in time: set the stored times directly, as if the consultation had aged."""
    values = {k: v for k, v in (("opens_at", opens_at), ("closes_at", closes_at)) if v is not None}

    async def write(conn: Any) -> None:
        await conn.execute(
            sa.update(consultations).where(consultations.c.id == consultation_id).values(**values)
        )

    await client.app[keys.WRITER].submit(write)
    client.app[keys.CACHE].invalidate(cache_key(SECTION, consultation_id))


async def past_minimum_discussion(client: Any, consultation_id: str, days: int = 10) -> None:
    """Age the consultation: opened and created ``days`` ago, still open."""
    earlier = now() - dt.timedelta(days=days, seconds=1)

    async def write(conn: Any) -> None:
        await conn.execute(
            sa.update(consultations)
            .where(consultations.c.id == consultation_id)
            .values(opens_at=earlier, created_at=earlier)
        )

    await client.app[keys.WRITER].submit(write)
    client.app[keys.CACHE].invalidate(cache_key(SECTION, consultation_id))


async def close_by_deadline(client: Any, consultation_id: str) -> None:
    await move_times(
        client,
        consultation_id,
        opens_at=now() - dt.timedelta(days=15),
        closes_at=now() - dt.timedelta(seconds=1),
    )


async def fetch_rows(client: Any, query: Any) -> list[Any]:
    async with client.app[keys.DATABASE].read() as conn:
        return list((await conn.execute(query)).all())
