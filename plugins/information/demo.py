"""Demo items and information requests, for ``qatysu serve --demo``."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sdk import JURISDICTION, VERIFIER, WRITER, utcnow
from plugins.information.lifecycle import RequestStatus
from plugins.information.state import STATE
from plugins.information.store import insert_item
from plugins.information.tables import items, requests

AGENCY = "almaty-akimat"


class DemoItem(NamedTuple):
    id: str
    language: str
    category: str
    title: str
    body: str
    translation: tuple[str, str, str] | None = None


class DemoRequest(NamedTuple):
    id: str
    status: RequestStatus
    public: bool
    language: str
    subject: str
    text: str
    reply: str | None = None


_ITEMS = (
    DemoItem(
        id="demo-info-kk",
        language="kk",
        category="schools",
        title="Мектепке қабылдау басталды",
        body="Бірінші сыныпқа қабылдау 1 сәуірде басталады. Өтініштер egov.kz арқылы қабылданады.",
    ),
    DemoItem(
        id="demo-info-ru",
        language="ru",
        category="transport",
        title="Новый автобусный маршрут",
        body="Маршрут 12 продлевается до нового жилого массива в следующем месяце.",
        translation=(
            "en",
            "New bus route",
            "From next month route 12 is extended to the new residential area.",
        ),
    ),
    DemoItem(
        id="demo-info-en",
        language="en",
        category="budget",
        title="City budget for the coming year",
        body="The draft city budget is published for comment: schools, roads and parks.",
    ),
)

_REQUESTS = (
    DemoRequest(
        id="demo-request-registered",
        status=RequestStatus.REGISTERED,
        public=False,
        language="en",
        subject="Playground repair schedule",
        text="When will the playground in Samal be repaired?",
    ),
    DemoRequest(
        id="demo-request-in-progress",
        status=RequestStatus.IN_PROGRESS,
        public=False,
        language="ru",
        subject="График уборки снега",
        text="Прошу предоставить график уборки снега в Медеуском районе.",
    ),
    DemoRequest(
        id="demo-request-answered",
        status=RequestStatus.ANSWERED,
        public=True,
        language="en",
        subject="School enrolment figures",
        text="How many first-grade places does each district school have?",
        reply="The list of places per school is published on the akimat's website.",
    ),
    DemoRequest(
        id="demo-request-refused",
        status=RequestStatus.REFUSED,
        public=False,
        language="en",
        subject="Employee personal files",
        text="Please send the personal files of the akimat's staff.",
        reply="Personal data of employees is information with limited access.",
    ),
)


async def seed_information(app: web.Application) -> list[str]:
    channel = app[STATE]
    citizen_hash = app[VERIFIER].citizen_hash
    sample_id = app[JURISDICTION].sample_national_id
    now = utcnow()

    async def write(conn: AsyncConnection) -> int:
        existing = await conn.scalar(
            sa.select(sa.func.count()).select_from(items).where(items.c.id.like("demo-%"))
        )
        if existing:
            return 0
        for age, item in enumerate(reversed(_ITEMS), start=1):
            translations = []
            if item.translation is not None:
                language, title, body = item.translation
                translations.append(
                    {"item_id": item.id, "language": language, "title": title, "body": body}
                )
            await insert_item(
                conn,
                {
                    "id": item.id,
                    "agency": AGENCY,
                    "category": item.category,
                    "language": item.language,
                    "title": item.title,
                    "body": item.body,
                    "translations_text": "\n".join(
                        f"{t['title']}\n{t['body']}" for t in translations
                    ),
                    "published_at": now - dt.timedelta(days=age),
                },
                translations,
            )
        for index, demo in enumerate(_REQUESTS):
            filed = now - dt.timedelta(days=len(_REQUESTS) - index)
            row: dict[str, Any] = {
                "id": demo.id,
                "agency": AGENCY,
                "subject": demo.subject,
                "text": demo.text,
                "language": demo.language,
                "requester_hash": citizen_hash(sample_id(3_000_000 + index)),
                "requester_name": "Aigerim Sadykova",
                "public": demo.public,
                "flagged": False,
                "status": demo.status.value,
                "filed_at": filed,
                "due_at": channel.calendar.term_end(filed, channel.settings.answer_term),
            }
            if demo.status is not RequestStatus.REGISTERED:
                row["started_at"] = filed
            if demo.reply is not None:
                row.update(reply_text=demo.reply, reply_language=demo.language, replied_at=now)
            await conn.execute(requests.insert().values(**row))
        return len(_ITEMS) + len(_REQUESTS)

    created = await app[WRITER].submit(write)
    return [
        f"information: {created} demo items and requests seeded"
        if created
        else "information: demo data present",
        "  demo items: " + ", ".join(item.id for item in _ITEMS),
        "  a public answered request: /api/v1/information-requests/public/demo-request-answered",
        f"  demo requests are addressed to agency {AGENCY!r}",
    ]
