"""HTTP handlers of published items: publish, read (cached), list and search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from core.api import AGENCY, require

from core import keys
from core.bodies import json_response, query_model, read_model
from core.cache import cached_document
from core.clock import utcnow
from core.events import emit_event
from core.idempotency import resource_id
from plugins.information.channel import CHANNEL
from plugins.information.item_store import fetch_item, insert_item, item_document, list_items
from plugins.information.models import ItemListQuery, ItemPublish
from plugins.information.search import search_terms

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

BASE = "/api/v1/information"


async def publish_item(request: web.Request) -> web.Response:
    official = require(request, AGENCY)
    body = await read_model(request, ItemPublish)
    item: dict[str, Any] = {
        "id": resource_id(request),
        "agency": official.agency,
        "category": body.category,
        "language": body.language,
        "title": body.title,
        "body": body.body,
        "translations_text": "\n".join(f"{t.title}\n{t.body}" for t in body.translations),
        "published_at": utcnow(),
    }
    item_translations = [
        {"item_id": item["id"], "language": t.language, "title": t.title, "body": t.body}
        for t in body.translations
    ]

    async def insert(conn: AsyncConnection) -> tuple[bool, dict[str, Any]]:
        stored = await fetch_item(conn, item["id"])
        if stored is not None:
            return False, stored
        await insert_item(conn, item, item_translations)
        return True, item_document(item, item_translations)

    created, document = await request.app[keys.WRITER].submit(insert)
    if created:
        emit_event(
            request,
            "information.published",
            item["id"],
            {"agency": item["agency"], "category": item["category"]},
        )
    return json_response(
        document,
        status=201,
        headers={"Location": f"{BASE}/{item['id']}"},
    )


async def get_item(request: web.Request) -> web.Response:
    item_id = request.match_info["id"]
    return await cached_document(
        request,
        f"information:{item_id}",
        lambda conn: fetch_item(conn, item_id),
        max_age=request.app[CHANNEL].settings.cache_max_age,
        missing="no such information item",
    )


async def list_all(request: web.Request) -> web.Response:
    query = query_model(request, ItemListQuery)
    channel = request.app[CHANNEL]
    terms = search_terms(query.q) if query.q is not None and query.q.strip() else None
    if terms == []:
        # Nothing searchable was asked (only punctuation): nothing can match.
        return json_response({"items": [], "next_cursor": None})
    async with request.app[keys.DATABASE].read() as conn:
        documents, next_cursor = await list_items(
            conn,
            agency=query.agency,
            category=query.category,
            language=query.language,
            terms=terms,
            limit=channel.page_size(query.limit),
            cursor=query.cursor,
        )
    return json_response({"items": documents, "next_cursor": next_cursor})
