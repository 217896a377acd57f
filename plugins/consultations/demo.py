"""A demo consultation, open now, for ``qatysu serve --demo``."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa

from core.sdk import JURISDICTION, VERIFIER, WRITER, utcnow
from plugins.consultations.lifecycle import TALLY_COLUMNS, Position
from plugins.consultations.store import thread_key
from plugins.consultations.tables import comments, consultations, sections, votes

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy.ext.asyncio import AsyncConnection

DEMO_ID = "demo-consultation"

_SECTIONS = (
    (
        "General provisions",
        "These Rules set how parents apply for a place in a state kindergarten or school.",
    ),
    (
        "Applications",
        "An application is filed online on the e-government portal, at any time of day.",
    ),
    (
        "Queue order",
        "Places are offered in the order applications were filed; the queue is public.",
    ),
    (
        "Appeals",
        "A parent may appeal a refusal to the education department within ten working days.",
    ),
)

# (id, parent id, section, author number, name, text)
_COMMENTS = (
    (
        "d0000000000000a1",
        None,
        2,
        1,
        "Aigerim Sadykova",
        "Please let parents without an e-signature apply through the mobile app with an SMS code.",
    ),
    (
        "d0000000000000a2",
        "d0000000000000a1",
        2,
        2,
        "Nurlan Bekov",
        "Agreed: the SMS code is already used for other public services.",
    ),
    (
        "d0000000000000a3",
        None,
        3,
        3,
        "Dana Omarova",
        "The public queue should show each application's number, not the parent's name.",
    ),
    (
        "d0000000000000a4",
        None,
        None,
        4,
        "Yerlan Tulegenov",
        "The draft is a good step; publish the number of free places per school as well.",
    ),
)

_VOTES = (Position.SUPPORT, Position.SUPPORT, Position.SUPPORT, Position.OPPOSE, Position.NEUTRAL)


async def seed_consultation(app: web.Application) -> list[str]:
    citizen_hash = app[VERIFIER].citizen_hash
    sample_id = app[JURISDICTION].sample_national_id
    now = utcnow()

    async def write(conn: AsyncConnection) -> bool:
        existing = await conn.scalar(
            sa.select(consultations.c.id).where(consultations.c.id == DEMO_ID)
        )
        if existing is not None:
            return False
        tallies = {column.name: 0 for column in TALLY_COLUMNS.values()}
        for position in _VOTES:
            tallies[TALLY_COLUMNS[position].name] += 1
        await conn.execute(
            consultations.insert().values(
                id=DEMO_ID,
                agency="almaty-akimat",
                title="Draft Rules for enrolment in kindergartens and schools",
                summary="The akimat proposes one online queue for kindergarten and school places.",
                # Open past the minimum discussion, so the tour's report can close it.
                opens_at=now - dt.timedelta(days=11),
                closes_at=now + dt.timedelta(days=3),
                created_at=now - dt.timedelta(days=11),
                comment_count=len(_COMMENTS),
                **tallies,
            )
        )
        await conn.execute(
            sections.insert(),
            [
                {"consultation_id": DEMO_ID, "number": number, "heading": heading, "text": text}
                for number, (heading, text) in enumerate(_SECTIONS, start=1)
            ],
        )
        keys_by_id: dict[str, str] = {}
        for index, (cid, parent, section, author, name, text) in enumerate(_COMMENTS):
            created_at = now - dt.timedelta(hours=24 - index)
            parent_key = keys_by_id[parent] if parent is not None else ""
            keys_by_id[cid] = thread_key(parent_key, cid, created_at)
            await conn.execute(
                comments.insert().values(
                    id=cid,
                    consultation_id=DEMO_ID,
                    section=section,
                    parent_id=parent,
                    depth=2 if parent is not None else 1,
                    thread_key=keys_by_id[cid],
                    text=text,
                    author_hash=citizen_hash(sample_id(3_000_000 + author)),
                    author_name=name.split()[0] + f" {name.split()[1][0]}.",
                    flagged=False,
                    created_at=created_at,
                )
            )
        await conn.execute(
            votes.insert(),
            [
                {
                    "consultation_id": DEMO_ID,
                    "citizen_hash": citizen_hash(sample_id(n)),
                    "position": position.value,
                    "voted_at": now,
                }
                for n, position in enumerate(_VOTES, start=3_100_000)
            ],
        )
        return True

    created = await app[WRITER].submit(write)
    status = "1 demo consultation seeded" if created else "demo data present"
    return [f"consultations: {status}", f"  demo consultation id: {DEMO_ID}"]
