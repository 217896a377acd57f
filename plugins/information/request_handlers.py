"""HTTP handlers of access-to-information requests.

A request that is not public exists only for its requester and the agency it is addressed to:
anyone else, officials included, gets 404 for it, never 403, so not even its existence leaks.
Public requests are read through the ``/public`` routes, which never show the requester.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiohttp import web
from core.api import AGENCY, CITIZEN, caller, require

from core import keys
from core.bodies import json_response, query_model, read_model
from core.clock import utcnow
from core.errors import Conflict, NotFound, invalid
from core.events import emit_event
from core.idempotency import resource_id
from core.identity import Identity, Role
from core.moderation import Verdict, moderate_texts
from plugins.information.channel import CHANNEL
from plugins.information.lifecycle import OPEN, RequestStatus
from plugins.information.models import (
    PublicRequestQuery,
    RequestAnswer,
    RequestFile,
    RequestListQuery,
    RequestRefusal,
)
from plugins.information.request_store import (
    fetch_request,
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

BASE = "/api/v1/information-requests"
PRIVATE = {"Cache-Control": "private, no-store"}


async def file_request(request: web.Request) -> web.Response:
    citizen = require(request, CITIZEN)
    channel = request.app[CHANNEL]
    body = await read_model(request, RequestFile)
    if body.agency not in request.app[keys.AGENCIES]:
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
        "requester_hash": citizen.subject,
        "requester_name": citizen.name,
        "public": body.public,
        "flagged": verdict.verdict is Verdict.FLAG,
        "status": RequestStatus.REGISTERED.value,
        "filed_at": now,
        "due_at": channel.calendar.term_end(now, channel.settings.answer_term),
        "started_at": None,
        "reply_text": None,
        "reply_language": None,
        "replied_at": None,
    }

    async def insert(conn: AsyncConnection) -> tuple[bool, Mapping[Any, Any]]:
        stored = await fetch_request(conn, row["id"])
        if stored is not None:
            return False, stored._mapping
        await conn.execute(requests.insert().values(**row))
        return True, row

    created, stored = await request.app[keys.WRITER].submit(insert)
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
        headers={"Location": f"{BASE}/{row['id']}", **PRIVATE},
    )


async def get_request(request: web.Request) -> web.Response:
    async with request.app[keys.DATABASE].read() as conn:
        row = await fetch_request(conn, request.match_info["id"])
    if row is None or not _is_party(caller(request), row._mapping):
        raise NotFound("no such information request")
    return json_response(private_document(row._mapping, utcnow()), headers=PRIVATE)


def _is_party(identity: Identity | None, row: Mapping[Any, Any]) -> bool:
    """The requester, or an official of the agency asked."""
    if identity is None:
        return False
    if identity.role is Role.CITIZEN:
        return bool(identity.subject == row["requester_hash"])
    return identity.role is Role.AGENCY and identity.agency == row["agency"]


async def list_own(request: web.Request) -> web.Response:
    """The agency's queue (``queue=agency``) or the citizen's own requests (``mine=true``)."""
    query = query_model(request, RequestListQuery)
    if query.queue is not None and query.mine:
        raise invalid("queue", "ask for queue=agency or mine=true, not both")
    if query.queue == "agency":
        official = require(request, AGENCY)
        where: list[sa.ColumnElement[bool]] = [requests.c.agency == official.agency]
    elif query.mine:
        citizen = require(request, CITIZEN)
        where = [requests.c.requester_hash == citizen.subject]
    else:
        raise invalid(
            "queue",
            "ask for queue=agency (agencies) or mine=true (citizens); "
            "public requests are listed at {path}",
            path=BASE + "/public",
        )
    now = utcnow()
    if query.status is not None:
        where.append(requests.c.status == query.status.value)
    if query.overdue is not None:
        where.append(overdue_clause(now) if query.overdue else sa.not_(overdue_clause(now)))
    async with request.app[keys.DATABASE].read() as conn:
        rows, next_cursor = await list_requests(
            conn,
            where=where,
            by_due_date=query.queue == "agency",
            limit=request.app[CHANNEL].page_size(query.limit),
            cursor=query.cursor,
        )
    return json_response(
        {"items": [private_document(r._mapping, now) for r in rows], "next_cursor": next_cursor},
        headers=PRIVATE,
    )


async def list_public(request: web.Request) -> web.Response:
    query = query_model(request, PublicRequestQuery)
    where: list[sa.ColumnElement[bool]] = [requests.c.public.is_(True)]
    if query.agency is not None:
        where.append(requests.c.agency == query.agency)
    if query.status is not None:
        where.append(requests.c.status == query.status.value)
    async with request.app[keys.DATABASE].read() as conn:
        rows, next_cursor = await list_requests(
            conn,
            where=where,
            by_due_date=False,
            limit=request.app[CHANNEL].page_size(query.limit),
            cursor=query.cursor,
        )
    now = utcnow()
    return json_response(
        {"items": [public_document(r._mapping, now) for r in rows], "next_cursor": next_cursor}
    )


async def get_public(request: web.Request) -> web.Response:
    async with request.app[keys.DATABASE].read() as conn:
        row = await fetch_request(conn, request.match_info["id"])
    if row is None or not row.public:
        raise NotFound("no such public information request")
    return json_response(public_document(row._mapping, utcnow()))


async def start_progress(request: web.Request) -> web.Response:
    official = require(request, AGENCY)
    row = await _move(
        request,
        official,
        frozenset({RequestStatus.REGISTERED}),
        {"status": RequestStatus.IN_PROGRESS.value, "started_at": utcnow()},
    )
    emit_event(request, "information_request.in_progress", row.id, {"agency": row.agency})
    return json_response(private_document(row._mapping, utcnow()), headers=PRIVATE)


async def answer(request: web.Request) -> web.Response:
    official = require(request, AGENCY)
    body = await read_model(request, RequestAnswer)
    row = await _move(
        request,
        official,
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


async def refuse(request: web.Request) -> web.Response:
    official = require(request, AGENCY)
    body = await read_model(request, RequestRefusal)
    row = await _move(
        request,
        official,
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


async def _move(
    request: web.Request,
    official: Identity,
    allowed_from: frozenset[RequestStatus],
    values: dict[str, Any],
) -> Row[Any]:
    """Move the agency's own request out of ``allowed_from``: 404 when it is unknown or another
    agency's, 409 from any other status. The guarded UPDATE stays right if two officials race."""
    request_id = request.match_info["id"]

    async def write(conn: AsyncConnection) -> Row[Any]:
        moved = await conn.execute(
            sa.update(requests)
            .where(
                requests.c.id == request_id,
                requests.c.agency == official.agency,
                requests.c.status.in_([s.value for s in allowed_from]),
            )
            .values(**values)
            .returning(*requests.c)
        )
        row = moved.first()
        if row is not None:
            return row
        current = await fetch_request(conn, request_id)
        if current is None or current.agency != official.agency:
            raise NotFound("no such information request")
        raise Conflict(
            "the request is {status}; this needs it to be one of: {allowed}",
            extra={"request_status": current.status},
            params={"status": current.status, "allowed": ", ".join(sorted(allowed_from))},
        )

    row: Row[Any] = await request.app[keys.WRITER].submit(write)
    return row
