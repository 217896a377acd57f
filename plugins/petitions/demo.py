"""Demo petitions in several states, for ``qatysu serve --demo``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sdk import JURISDICTION, VERIFIER, WRITER, utcnow
from plugins.petitions.collection import collection_ends
from plugins.petitions.lifecycle import Status
from plugins.petitions.state import STATE
from plugins.petitions.tables import petitions, signatures

_DEMO = (
    (
        "demo-moderation",
        Status.MODERATION,
        "government",
        0,
        "Publish school enrolment queues online",
        "Parents wait in line overnight to enrol their children. We ask that the enrolment queue "
        "for every school be published online in real time.",
    ),
    (
        "demo-restricted",
        Status.RESTRICTED,
        "astana-maslikhat",
        12,
        "Light the footpath along the Esil embankment",
        "The footpath between the two bridges has no lighting and is unsafe after dark. We ask "
        "the maslikhat to fund lighting in next year's budget.",
    ),
    (
        "demo-public",
        Status.PUBLIC,
        "almaty-bostandyq-akimat",
        180,
        "Repair the playground in microdistrict Orbita",
        "The playground equipment in Orbita has been broken for two years. We ask the district "
        "akimat to repair it before the summer holidays.",
    ),
    (
        "demo-awaiting",
        Status.AWAITING_RESPONSE,
        "almaty-bostandyq-akimat",
        2500,
        "Add a bus route to the new residential area",
        "Residents of the new blocks walk forty minutes to the nearest stop. We ask the akimat to "
        "extend route 12 to the new residential area.",
    ),
    (
        "demo-answered",
        Status.ANSWERED,
        "karaganda-city-maslikhat",
        5000,
        "Open the city library on Sundays",
        "Students and working people can only visit the library at weekends. We ask that the "
        "central library open on Sundays.",
    ),
)


async def seed_petitions(app: web.Application) -> list[str]:
    channel = app[STATE]
    unregistered = sorted({addressee for _, _, addressee, *_ in _DEMO} - set(channel.thresholds))
    if unregistered:
        return [f"petitions: no demo data, the register lacks {', '.join(unregistered)}"]
    citizen_hash = app[VERIFIER].citizen_hash
    sample_id = app[JURISDICTION].sample_national_id
    now = utcnow()

    async def write(conn: AsyncConnection) -> int:
        existing = await conn.scalar(
            sa.select(sa.func.count()).select_from(petitions).where(petitions.c.id.like("demo-%"))
        )
        if existing:
            return 0
        for index, (pid, status, addressee, count, title, text) in enumerate(_DEMO):
            row: dict[str, Any] = {
                "id": pid,
                "title": title,
                "text": text,
                "addressee": addressee,
                "author_hash": citizen_hash(sample_id(1_000_000 + index)),
                "author_name": "Aigerim S.",
                "status": status.value,
                "flagged": False,
                "signature_count": count,
                "threshold": channel.thresholds[addressee],
                "co_signer_minimum": channel.settings.co_signer_minimum,
                "was_public": status not in (Status.MODERATION, Status.RESTRICTED),
                "created_at": now - dt.timedelta(days=5 - index),
                "moderation_due_at": channel.calendar.term_end(
                    now, channel.settings.moderation_term
                ),
            }
            if status is not Status.MODERATION:
                row.update(
                    moderated_at=now,
                    restricted_until=channel.calendar.term_end(
                        now, channel.settings.co_signer_term
                    ),
                )
            if status is Status.PUBLIC:
                row["collection_ends_at"] = collection_ends(
                    channel.calendar, now, channel.settings.collection_term
                )
            if status in (Status.AWAITING_RESPONSE, Status.ANSWERED):
                row.update(
                    threshold_reached_at=now,
                    response_due_at=channel.calendar.term_end(
                        now, channel.settings.response_terms["local"]
                    ),
                )
            if status is Status.ANSWERED:
                row.update(
                    response_text="The library will open on Sundays from next month.",
                    response_agency=addressee,
                    responded_at=now,
                    closed_at=now,
                )
            await conn.execute(petitions.insert().values(**row))
            signers = [
                {
                    "petition_id": pid,
                    "citizen_hash": citizen_hash(sample_id(n)),
                    "public_name": "Demo C.",
                    "signed_at": now,
                }
                for n in range(2_000_000, 2_000_000 + count)
            ]
            if signers:
                await conn.execute(signatures.insert(), signers)
        return len(_DEMO)

    created = await app[WRITER].submit(write)
    ids = ", ".join(pid for pid, *_ in _DEMO)
    return [
        f"petitions: {created} demo petitions seeded"
        if created
        else "petitions: demo data present",
        f"  demo petition ids: {ids}",
        "  try: curl -s http://HOST/api/v1/petitions?sort=signatures",
        "  and, with a citizen token in $CITIZEN:",
        '    curl -s -X POST -H "Authorization: Bearer $CITIZEN" '
        "http://HOST/api/v1/petitions/demo-public/signatures",
    ]
