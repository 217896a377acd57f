"""HTTP handlers of published items, each declared with its route: publish, list and search,
read (cached)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from core.sdk import (
    DATABASE,
    WRITER,
    Identity,
    Role,
    Routes,
    cache_key,
    cached_document,
    emit_event,
    json_response,
    page_response,
    page_size,
    resource_id,
    utcnow,
)
from plugins.information import models
from plugins.information.item_store import fetch_item, insert_item, item_document, list_items
from plugins.information.models import ItemListQuery, ItemPublish
from plugins.information.policies import LIST, PUBLISH, READ
from plugins.information.search import search_terms
from plugins.information.settings import SECTION
from plugins.information.state import STATE

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

BASE = "/api/v1/information"

routes = Routes(BASE, tags=("information",))


@routes.post(
    "",
    name="information.publish",
    summary="Publish an item, with optional translations",
    policy=PUBLISH,
    roles=Role.AGENCY,
    body=ItemPublish,
    responses={201: models.Item},
    idempotent=True,
)
async def publish_item(request: web.Request, identity: Identity, body: ItemPublish) -> web.Response:
    item: dict[str, Any] = {
        "id": resource_id(request),
        "agency": identity.agency,
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

    created, document = await request.app[WRITER].submit(insert)
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


@routes.get(
    "",
    name="information.list",
    summary="List items by agency, category or language; q= searches full text",
    policy=LIST,
    query=ItemListQuery,
    responses={200: models.ItemPage},
)
async def list_all(request: web.Request, query: ItemListQuery) -> web.Response:
    terms = search_terms(query.q) if query.q is not None and query.q.strip() else None
    if terms == []:
        # Nothing searchable was asked (only punctuation): nothing can match.
        return page_response(request, [], None)
    async with request.app[DATABASE].read() as conn:
        documents, next_cursor = await list_items(
            conn,
            agency=query.agency,
            category=query.category,
            language=query.language,
            terms=terms,
            limit=page_size(query.limit, request.app[STATE].settings),
            cursor=query.cursor,
        )
    return page_response(request, documents, next_cursor)


@routes.get(
    "/{id}",
    name="information.get",
    summary="Read one item (ETag, Cache-Control)",
    policy=READ,
    responses={200: models.Item, 304: "Not modified", 404: "No such item"},
)
async def get_item(request: web.Request) -> web.Response:
    item_id = request.match_info["id"]
    return await cached_document(
        request,
        cache_key(SECTION, item_id),
        lambda conn: fetch_item(conn, item_id),
        max_age=request.app[STATE].settings.cache_max_age,
        missing="no such information item",
    )
