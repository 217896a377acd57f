"""HTTP handlers of the information channel, each declared with its route: published items
(publish, list and search, read), and access-to-information requests.

Admission policies: writes critical, single reads normal, lists and search sheddable; items and
requests share the read and list budgets.

A request that is not public exists only for its requester and the agency it is addressed to:
anyone else, officials included, gets 404 for it, never 403, so not even its existence leaks.
Public requests are read through the ``/public`` routes, which never show the requester.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiohttp import web

from core.sdk import (
    DATABASE,
    JURISDICTION,
    WRITER,
    Conflict,
    Identity,
    NotFound,
    QueryRoles,
    Responses,
    Role,
    Routes,
    Verdict,
    cache_key,
    cached_document,
    critical,
    emit_event,
    end_of_day,
    invalid,
    iso,
    json_response,
    moderate_texts,
    normal,
    not_found_or_conflict,
    page_response,
    page_size,
    resource_id,
    sheddable,
    transition,
    utcnow,
)
from plugins.information import models
from plugins.information.extensions import check_extension
from plugins.information.lifecycle import OPEN, RequestStatus
from plugins.information.models import (
    ItemListQuery,
    ItemPublish,
    PublicRequestQuery,
    RequestAnswer,
    RequestExtension,
    RequestFile,
    RequestListQuery,
    RequestRefusal,
)
from plugins.information.search import search_terms
from plugins.information.settings import SECTION
from plugins.information.state import STATE
from plugins.information.store import (
    fetch_item,
    fetch_request,
    insert_item,
    item_document,
    list_items,
    list_requests,
    overdue_clause,
    private_document,
    public_document,
)
from plugins.information.tables import requests

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

    from core.sdk import Problem


PUBLISH = critical("information-publish", rate=10.0, burst=50)
REPLY = critical("information-reply", rate=10.0, burst=50)
FILE = critical("information-request-file", rate=0.05, burst=5)
READ = normal("information-read", rate=50.0, burst=100)
LIST = sheddable("information-list", rate=10.0, burst=20)


ITEMS = "/api/v1/information"

item_routes = Routes(ITEMS, tags=("information",))


@item_routes.post(
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
        headers={"Location": f"{ITEMS}/{item['id']}"},
    )


@item_routes.get(
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


@item_routes.get(
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


REQUESTS = "/api/v1/information-requests"
PRIVATE = {"Cache-Control": "private, no-store"}
NOT_YOURS = "No such request, or not one the caller may see"
REPLY_RESPONSES: Responses = {
    200: models.InformationRequest,
    404: NOT_YOURS,
    409: "The request's status does not allow this",
}

request_routes = Routes(REQUESTS, tags=("information-requests",))


@request_routes.post(
    "",
    name="information_requests.file",
    summary="Ask an agency for information; due in the statutory working days",
    policy=FILE,
    roles=Role.CITIZEN,
    body=RequestFile,
    responses={201: models.InformationRequest},
    idempotent=True,
)
async def file_request(request: web.Request, identity: Identity, body: RequestFile) -> web.Response:
    channel = request.app[STATE]
    if request.app[JURISDICTION].addressee(body.agency) is None:
        raise invalid(
            "agency", "no registered agency has this code; GET /api/v1/agencies lists them"
        )
    verdict = await moderate_texts(
        request,
        "information",
        {"subject": body.subject, "text": body.text},
        language=body.language,
    )
    now = utcnow()
    row: dict[str, Any] = {
        "id": resource_id(request),
        "agency": body.agency,
        "subject": body.subject,
        "text": body.text,
        "language": body.language,
        "requester_hash": identity.subject,
        "requester_name": identity.name,
        "public": body.public,
        "flagged": verdict.verdict is Verdict.FLAG,
        "status": RequestStatus.REGISTERED.value,
        "filed_at": now,
        "due_at": channel.calendar.term_end(now, channel.settings.answer_term),
        "started_at": None,
        "reply_text": None,
        "reply_language": None,
        "replied_at": None,
        "extended_at": None,
        "extension_reason": None,
        "extension_language": None,
    }

    async def insert(conn: AsyncConnection) -> tuple[bool, Mapping[Any, Any]]:
        stored = await fetch_request(conn, row["id"])
        if stored is not None:
            return False, stored._mapping
        await conn.execute(requests.insert().values(**row))
        return True, row

    created, stored = await request.app[WRITER].submit(insert)
    if created:
        emit_event(
            request,
            "information_request.filed",
            row["id"],
            {"agency": body.agency, "public": body.public},
        )
    return json_response(
        private_document(stored, now),
        status=201,
        headers={"Location": f"{REQUESTS}/{row['id']}", **PRIVATE},
    )


@request_routes.get(
    "",
    name="information_requests.list",
    summary="The agency's queue by due date (queue=agency) or the citizen's own "
    "requests (mine=true)",
    policy=LIST,
    roles=(Role.AGENCY, Role.CITIZEN),
    query=RequestListQuery,
    # The route admits both roles; which one a list needs depends on what it asks for.
    query_roles=(
        QueryRoles(
            roles=frozenset({Role.AGENCY}),
            asks=lambda query: query.queue == "agency" and not query.mine,
            description="queue=agency",
        ),
        QueryRoles(
            roles=frozenset({Role.CITIZEN}),
            asks=lambda query: bool(query.mine) and query.queue is None,
            description="mine=true",
        ),
    ),
    responses={200: models.RequestPage},
)
async def list_own(
    request: web.Request, identity: Identity, query: RequestListQuery
) -> web.Response:
    """The agency's queue (``queue=agency``) or the citizen's own requests (``mine=true``)."""
    if query.queue is not None and query.mine:
        raise invalid("queue", "ask for queue=agency or mine=true, not both")
    if query.queue == "agency":
        where: list[sa.ColumnElement[bool]] = [requests.c.agency == identity.agency]
    elif query.mine:
        where = [requests.c.requester_hash == identity.subject]
    else:
        raise invalid(
            "queue",
            "ask for queue=agency (agencies) or mine=true (citizens); "
            "public requests are listed at {path}",
            path=REQUESTS + "/public",
        )
    now = utcnow()
    if query.status is not None:
        where.append(requests.c.status == query.status.value)
    if query.overdue is not None:
        where.append(overdue_clause(now) if query.overdue else sa.not_(overdue_clause(now)))
    async with request.app[DATABASE].read() as conn:
        rows, next_cursor = await list_requests(
            conn,
            where=where,
            by_due_date=query.queue == "agency",
            limit=page_size(query.limit, request.app[STATE].settings),
            cursor=query.cursor,
        )
    return page_response(
        request, [private_document(r._mapping, now) for r in rows], next_cursor, headers=PRIVATE
    )


# The literal /public routes are declared before /{id} so "public" is never taken for an id.
@request_routes.get(
    "/public",
    name="information_requests.public_list",
    summary="Requests made public with their answers, newest first (no requester)",
    policy=LIST,
    query=PublicRequestQuery,
    responses={200: models.PublicRequestPage},
)
async def list_public(request: web.Request, query: PublicRequestQuery) -> web.Response:
    where: list[sa.ColumnElement[bool]] = [requests.c.public.is_(True)]
    if query.agency is not None:
        where.append(requests.c.agency == query.agency)
    if query.status is not None:
        where.append(requests.c.status == query.status.value)
    async with request.app[DATABASE].read() as conn:
        rows, next_cursor = await list_requests(
            conn,
            where=where,
            by_due_date=False,
            limit=page_size(query.limit, request.app[STATE].settings),
            cursor=query.cursor,
        )
    now = utcnow()
    return page_response(request, [public_document(r._mapping, now) for r in rows], next_cursor)


@request_routes.get(
    "/public/{id}",
    name="information_requests.public_get",
    summary="Read one public request (no requester)",
    policy=READ,
    responses={200: models.PublicInformationRequest, 404: "No such public request"},
)
async def get_public(request: web.Request) -> web.Response:
    async with request.app[DATABASE].read() as conn:
        row = await fetch_request(conn, request.match_info["id"])
    if row is None or not row.public:
        raise NotFound("no such public information request")
    return json_response(public_document(row._mapping, utcnow()))


# Public in the route table: a caller who is not a party gets 404, whatever their token says.
@request_routes.get(
    "/{id}",
    name="information_requests.get",
    summary="Read a request: its requester and the agency asked only, 404 for others",
    policy=READ,
    responses={200: models.InformationRequest, 404: NOT_YOURS},
)
async def get_request(request: web.Request, identity: Identity | None) -> web.Response:
    async with request.app[DATABASE].read() as conn:
        row = await fetch_request(conn, request.match_info["id"])
    if row is None or not _is_party(identity, row._mapping):
        raise NotFound("no such information request")
    return json_response(private_document(row._mapping, utcnow()), headers=PRIVATE)


def _is_party(identity: Identity | None, row: Mapping[Any, Any]) -> bool:
    """The requester, or an official of the agency asked."""
    if identity is None:
        return False
    if identity.role is Role.CITIZEN:
        return bool(identity.subject == row["requester_hash"])
    return identity.role is Role.AGENCY and identity.agency == row["agency"]


@request_routes.post(
    "/{id}/progress",
    name="information_requests.progress",
    summary="Start work on a registered request",
    policy=REPLY,
    roles=Role.AGENCY,
    responses=REPLY_RESPONSES,
)
async def start_progress(request: web.Request, identity: Identity) -> web.Response:
    row = await _move(
        request,
        identity,
        frozenset({RequestStatus.REGISTERED}),
        {"status": RequestStatus.IN_PROGRESS.value, "started_at": utcnow()},
    )
    emit_event(request, "information_request.in_progress", row.id, {"agency": row.agency})
    return json_response(private_document(row._mapping, utcnow()), headers=PRIVATE)


@request_routes.post(
    "/{id}/answer",
    name="information_requests.answer",
    summary="Answer a request",
    policy=REPLY,
    roles=Role.AGENCY,
    body=RequestAnswer,
    responses=REPLY_RESPONSES,
)
async def answer(request: web.Request, identity: Identity, body: RequestAnswer) -> web.Response:
    row = await _move(
        request,
        identity,
        OPEN,
        {
            "status": RequestStatus.ANSWERED.value,
            "reply_text": body.text,
            "reply_language": body.language,
            "replied_at": utcnow(),
        },
    )
    emit_event(
        request,
        "information_request.answered",
        row.id,
        {"agency": row.agency, "public": bool(row.public)},
    )
    return json_response(private_document(row._mapping, utcnow()), headers=PRIVATE)


@request_routes.post(
    "/{id}/refusal",
    name="information_requests.refusal",
    summary="Refuse a request, giving the reason",
    policy=REPLY,
    roles=Role.AGENCY,
    body=RequestRefusal,
    responses=REPLY_RESPONSES,
)
async def refuse(request: web.Request, identity: Identity, body: RequestRefusal) -> web.Response:
    row = await _move(
        request,
        identity,
        OPEN,
        {
            "status": RequestStatus.REFUSED.value,
            "reply_text": body.reason,
            "reply_language": body.language,
            "replied_at": utcnow(),
        },
    )
    emit_event(
        request,
        "information_request.refused",
        row.id,
        {"agency": row.agency, "public": bool(row.public)},
    )
    return json_response(private_document(row._mapping, utcnow()), headers=PRIVATE)


@request_routes.post(
    "/{id}/extension",
    name="information_requests.extension",
    summary="Extend the answer term, once, within the notice period after filing and up to the "
    "statutory maximum; the requester is told the reason",
    policy=REPLY,
    roles=Role.AGENCY,
    body=RequestExtension,
    responses={
        **REPLY_RESPONSES,
        409: "Not open, already extended, or past the notice period",
        422: "The new last day is not after the current one, or beyond the maximum",
    },
)
async def extend(request: web.Request, identity: Identity, body: RequestExtension) -> web.Response:
    channel = request.app[STATE]
    request_id = request.match_info["id"]
    now = utcnow()

    async def write(conn: AsyncConnection) -> Row[Any]:
        row = await fetch_request(conn, request_id)
        # Another agency's request is as unknown to this one as a request that does not exist.
        if row is None or row.agency != identity.agency:
            raise NotFound("no such information request")
        check_extension(channel.calendar, channel.settings.extension, row._mapping, body, now)
        values = {
            "due_at": end_of_day(channel.calendar, body.until),
            "extended_at": now,
            "extension_reason": body.reason,
            "extension_language": body.language,
        }
        # Guarded on what was checked, so that a racing answer or extension wins cleanly.
        return await transition(
            conn,
            requests,
            request_id,
            values,
            allowed_from=[status.value for status in OPEN],
            refusal=lambda current: Conflict(
                "the request changed while it was being extended; read it and try again"
            ),
            also=(
                requests.c.agency == identity.agency,
                requests.c.extended_at.is_(None),
                requests.c.due_at == row.due_at,
            ),
        )

    row: Row[Any] = await request.app[WRITER].submit(write)
    # The requester is told of the extension and its reason: the event carries both.
    emit_event(
        request,
        "information_request.extended",
        row.id,
        {
            "agency": row.agency,
            "requester": row.requester_hash,
            "due_at": iso(row.due_at),
            "reason": body.reason,
            "language": body.language,
        },
    )
    return json_response(private_document(row._mapping, now), headers=PRIVATE)


async def _move(
    request: web.Request,
    official: Identity,
    allowed_from: frozenset[RequestStatus],
    values: dict[str, Any],
) -> Row[Any]:
    """Move the agency's own request out of ``allowed_from``: 404 when it is unknown or another
    agency's, 409 from any other status."""
    request_id = request.match_info["id"]
    allowed = [status.value for status in allowed_from]
    explain = not_found_or_conflict(
        "no such information request",
        "the request is {status}; this needs it to be one of: {allowed}",
        allowed,
        status_field="request_status",
    )

    def refusal(row: Row[Any] | None) -> Problem:
        # Another agency's request is as unknown to this one as a request that does not exist.
        return explain(row if row is not None and row.agency == official.agency else None)

    async def write(conn: AsyncConnection) -> Row[Any]:
        return await transition(
            conn,
            requests,
            request_id,
            values,
            allowed_from=allowed,
            refusal=refusal,
            also=(requests.c.agency == official.agency,),
        )

    row: Row[Any] = await request.app[WRITER].submit(write)
    return row


routes = [*item_routes, *request_routes]
