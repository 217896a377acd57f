"""HTTP handlers of the petition channel, each declared with its route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiohttp import web

from core.sdk import (
    CACHE,
    DATABASE,
    JURISDICTION,
    WRITER,
    Conflict,
    Document,
    Forbidden,
    Identity,
    NotFound,
    QueryRoles,
    RenderedBody,
    Role,
    Routes,
    Verdict,
    already_stored,
    cache_key,
    cached_response,
    critical,
    emit_event,
    invalid,
    json_response,
    moderate_texts,
    normal,
    page_links,
    page_response,
    page_size,
    render,
    resource_id,
    sheddable,
    transition,
    utcnow,
)
from plugins.petitions import models
from plugins.petitions.export import COLUMNS, CSV_MEDIA_TYPE, counts_csv
from plugins.petitions.lifecycle import LISTED, PRIVATE, Status
from plugins.petitions.models import (
    ModerationDecision,
    PageQuery,
    PetitionAnswer,
    PetitionCreate,
    PetitionListQuery,
)
from plugins.petitions.reasons import require_in_force
from plugins.petitions.regions import signer_region
from plugins.petitions.search import search_terms
from plugins.petitions.settings import SECTION
from plugins.petitions.signing import SignRequest
from plugins.petitions.state import STATE
from plugins.petitions.store import fetch_petition, list_petitions, list_signers, petition_document
from plugins.petitions.tables import petitions

if TYPE_CHECKING:
    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

    from core.sdk import Problem

SIGN = critical("petition-sign", rate=1.0, burst=10)
FILE = critical("petition-file", rate=0.05, burst=5)
OFFICIAL = critical("official-write", rate=10.0, burst=50)
READ = normal("public-read", rate=50.0, burst=100)
LIST = sheddable("public-list", rate=10.0, burst=20)

routes = Routes("/api/v1/petitions", tags=("petitions",))


@dataclass(frozen=True, slots=True)
class Visibility:
    """Who may see a cached petition: enough to decide without another read."""

    status: Status
    author_hash: str


def _cache_key(petition_id: str) -> str:
    return cache_key(SECTION, petition_id)


@routes.post(
    "",
    name="petitions.create",
    summary="File a petition (it goes to moderation)",
    policy=FILE,
    roles=Role.CITIZEN,
    body=PetitionCreate,
    responses={201: models.Petition},
    idempotent=True,
)
async def create_petition(
    request: web.Request, identity: Identity, body: PetitionCreate
) -> web.Response:
    citizen = identity
    channel = request.app[STATE]
    if body.addressee not in channel.thresholds:
        raise invalid(
            "addressee", "no registered agency has this code; GET /api/v1/agencies lists them"
        )
    verdict = await moderate_texts(request, "petitions", {"title": body.title, "text": body.text})
    now = utcnow()
    petition_id = resource_id(request)
    row: dict[str, object] = {
        "id": petition_id,
        "title": body.title,
        "text": body.text,
        "addressee": body.addressee,
        "author_hash": citizen.subject,
        "author_name": citizen.public_name,
        "status": Status.MODERATION.value,
        "flagged": verdict.verdict is Verdict.FLAG,
        "moderation_flag": verdict.reason if verdict.verdict is Verdict.FLAG else None,
        "signature_count": 0,
        "threshold": channel.thresholds[body.addressee],
        "co_signer_minimum": channel.settings.co_signer_minimum,
        "was_public": False,
        "created_at": now,
        "moderation_due_at": channel.calendar.term_end(now, channel.settings.moderation_term),
    }

    async def insert(conn: AsyncConnection) -> bool:
        if await already_stored(conn, petitions.c.id, petition_id):
            return False
        await conn.execute(petitions.insert().values(**row))
        return True

    if await request.app[WRITER].submit(insert):
        emit_event(request, "petition.filed", petition_id, {"addressee": body.addressee})
    async with request.app[DATABASE].read() as conn:
        stored = await fetch_petition(conn, petition_id)
    assert stored is not None
    return json_response(
        petition_document(stored, now),
        status=201,
        headers={"Location": f"/api/v1/petitions/{petition_id}"},
    )


@routes.get(
    "/{id}",
    name="petitions.get",
    summary="Read one petition (ETag, Cache-Control)",
    policy=READ,
    responses={200: models.Petition, 304: "Not modified", 404: "No such petition"},
)
async def get_petition(request: web.Request, identity: Identity | None) -> web.Response:
    petition_id = request.match_info["id"]
    app = request.app

    async def load() -> RenderedBody:
        async with app[DATABASE].read() as conn:
            row = await fetch_petition(conn, petition_id)
        if row is None:
            return render(None)
        return render(
            petition_document(row, utcnow()), meta=Visibility(Status(row.status), row.author_hash)
        )

    rendered = await app[CACHE].get(_cache_key(petition_id), load)
    visibility: Visibility | None = rendered.meta
    if visibility is None:
        raise NotFound("no such petition")
    if visibility.status in PRIVATE:
        if not _may_see_private(identity, visibility.author_hash):
            raise NotFound("no such petition")
        return web.Response(
            body=rendered.body,
            content_type="application/json",
            headers={"Cache-Control": "private, no-store"},
        )
    settings = app[STATE].settings
    return cached_response(
        request, rendered, max_age=settings.cache_max_age, cache_key=_cache_key(petition_id)
    )


def _may_see_private(identity: Identity | None, author_hash: str) -> bool:
    if identity is None:
        return False
    return identity.role is Role.MODERATOR or identity.subject == author_hash


def _unlisted(query: PetitionListQuery) -> bool:
    return query.status is not None and query.status not in LISTED


def _only_moderators(query: PetitionListQuery) -> Problem:
    return Forbidden(
        "only moderators list petitions in status {status}", params={"status": query.status}
    )


UNLISTED_FOR_MODERATORS = QueryRoles(
    roles=frozenset({Role.MODERATOR}),
    asks=_unlisted,
    description="a status the public does not see",
    refusal=_only_moderators,
)
UNLISTED_REFUSED = "A status the public does not see, without a moderator's token"


@routes.get(
    "",
    name="petitions.list",
    summary="List petitions with filters, order, text search and a cursor",
    policy=LIST,
    query=PetitionListQuery,
    query_roles=UNLISTED_FOR_MODERATORS,
    responses={200: models.PetitionPage, 403: UNLISTED_REFUSED},
)
async def list_all(request: web.Request, query: PetitionListQuery) -> web.Response:
    rows, next_cursor = await _list_page(request, query)
    now = utcnow()
    return page_response(request, [petition_document(row, now) for row in rows], next_cursor)


@routes.get(
    ".csv",
    name="petitions.export",
    summary="The list's public counts as CSV: the list's filters, search, order and cursor",
    policy=LIST,
    query=PetitionListQuery,
    query_roles=UNLISTED_FOR_MODERATORS,
    responses={
        200: Document(
            "One row per petition: " + ", ".join(COLUMNS) + "; Link rel=next for the next page",
            CSV_MEDIA_TYPE,
        ),
        403: UNLISTED_REFUSED,
    },
)
async def export_counts(request: web.Request, query: PetitionListQuery) -> web.Response:
    rows, next_cursor = await _list_page(request, query)
    return web.Response(
        text=counts_csv(rows),
        content_type=CSV_MEDIA_TYPE,
        charset="utf-8",
        headers={
            "Link": page_links(request, next_cursor),
            "Content-Disposition": 'attachment; filename="petitions.csv"',
        },
    )


async def _list_page(
    request: web.Request, query: PetitionListQuery
) -> tuple[list[Row[Any]], str | None]:
    channel = request.app[STATE]
    terms = search_terms(query.q) if query.q is not None and query.q.strip() else None
    if terms == []:
        # Nothing searchable was asked (only punctuation): nothing can match.
        return [], None
    async with request.app[DATABASE].read() as conn:
        return await list_petitions(
            conn,
            statuses=frozenset({query.status}) if query.status is not None else LISTED,
            addressee=query.addressee,
            sort=query.sort,
            limit=page_size(query.limit, channel.settings),
            cursor=query.cursor,
            terms=terms,
        )


@routes.post(
    "/{id}/signatures",
    name="petitions.sign",
    summary="Sign a petition, once per citizen",
    policy=SIGN,
    roles=Role.CITIZEN,
    responses={
        201: models.SignatureReceipt,
        200: models.SignatureReceipt,
        404: "No such petition",
        409: "The petition cannot be signed",
    },
)
async def sign(request: web.Request, identity: Identity) -> web.Response:
    citizen = identity
    channel = request.app[STATE]
    outcome = await request.app[WRITER].submit_batched(
        channel.signing,
        SignRequest(
            request.match_info["id"],
            citizen.subject,
            citizen.public_name,
            utcnow(),
            signer_region(citizen, request.app[JURISDICTION]),
        ),
    )
    if outcome.created:
        channel.signatures.inc()
        channel.live.changed(outcome.petition_id, outcome.signature_count, outcome.status)
    if outcome.became is not None:
        request.app[CACHE].invalidate(_cache_key(outcome.petition_id))
        name = (
            "petition.threshold_reached"
            if outcome.became is Status.AWAITING_RESPONSE
            else "petition.published"
        )
        emit_event(request, name, outcome.petition_id, {"signature_count": outcome.signature_count})
    return json_response(
        {
            "petition_id": outcome.petition_id,
            "signature_count": outcome.signature_count,
            "status": outcome.status.value,
            "already_signed": not outcome.created,
        },
        status=201 if outcome.created else 200,
    )


@routes.get(
    "/{id}/signatures",
    name="petitions.signers",
    summary="The public signer list: first name and initial only",
    policy=LIST,
    query=PageQuery,
    responses={200: models.SignerPage},
)
async def signers(request: web.Request, query: PageQuery) -> web.Response:
    petition_id = request.match_info["id"]
    channel = request.app[STATE]
    limit = page_size(query.limit, channel.settings)
    cursors = channel.signer_cursors
    after = cursors.open(petition_id, query.cursor) if query.cursor is not None else None
    async with request.app[DATABASE].read() as conn:
        row = await fetch_petition(conn, petition_id)
        if row is None or Status(row.status) in PRIVATE:
            raise NotFound("no such petition")
        items, next_cursor = await list_signers(
            conn, petition_id, limit=limit, after=after, cursors=cursors
        )
    return page_response(request, items, next_cursor)


@routes.post(
    "/{id}/moderation",
    name="petitions.moderate",
    summary="Approve or reject a petition in moderation",
    policy=OFFICIAL,
    roles=Role.MODERATOR,
    body=ModerationDecision,
    responses={200: models.Petition, 404: "No such petition", 409: "Not in moderation"},
)
async def moderate(
    request: web.Request, identity: Identity, body: ModerationDecision
) -> web.Response:
    moderator = identity
    channel = request.app[STATE]
    if body.decision == "reject" and body.reason_code is None:
        raise invalid("reason_code", "a rejection must cite its statutory ground")
    if body.decision == "approve" and body.reason_code is not None:
        raise invalid("reason_code", "only a rejection cites a ground")
    petition_id = request.match_info["id"]
    now = utcnow()
    if body.reason_code is not None:
        # Only a ground in force on the day of the decision, in the authority's zone.
        require_in_force(body.reason_code, now.astimezone(channel.calendar.timezone).date())
    if body.decision == "approve":
        values: dict[str, Any] = {
            "status": Status.RESTRICTED.value,
            "restricted_until": channel.calendar.term_end(now, channel.settings.co_signer_term),
        }
    else:
        values = {"status": Status.REJECTED.value, "closed_at": now}
    values.update(
        moderated_at=now,
        moderation_reason=body.reason,
        moderation_reason_code=body.reason_code.value if body.reason_code else None,
    )
    await _transition(request, petition_id, Status.MODERATION, values)
    emit_event(
        request,
        f"petition.{'approved' if body.decision == 'approve' else 'rejected'}",
        petition_id,
        {"moderator": moderator.subject, "reason_code": values["moderation_reason_code"]},
    )
    return await _current(request, petition_id)


@routes.post(
    "/{id}/response",
    name="petitions.respond",
    summary="The addressee's answer to a petition at its threshold",
    policy=OFFICIAL,
    roles=Role.AGENCY,
    body=PetitionAnswer,
    responses={200: models.Petition, 404: "No such petition", 409: "Not awaiting an answer"},
)
async def respond(request: web.Request, identity: Identity, body: PetitionAnswer) -> web.Response:
    agency = identity
    petition_id = request.match_info["id"]
    now = utcnow()
    await _transition(
        request,
        petition_id,
        Status.AWAITING_RESPONSE,
        {
            "status": Status.ANSWERED.value,
            "response_text": body.text,
            "response_agency": agency.agency,
            "responded_at": now,
            "closed_at": now,
        },
        agency=agency.agency,
    )
    emit_event(request, "petition.answered", petition_id, {"agency": agency.agency})
    return await _current(request, petition_id)


async def _transition(
    request: web.Request,
    petition_id: str,
    expected: Status,
    values: dict[str, Any],
    *,
    agency: str | None = None,
) -> None:
    """Move a petition out of ``expected``; 404 if it is unknown, 409 from any other status, 403
    when ``agency`` is not the one it is addressed to."""

    def refusal(row: Row[Any] | None) -> Problem:
        if row is None:
            return NotFound("no such petition")
        if row.status == expected.value:
            return Forbidden("the petition is addressed to another agency")
        return Conflict(
            "the petition is {status}, not {expected}",
            extra={"petition_status": row.status},
            params={"status": row.status, "expected": expected.value},
        )

    # New rows name their agency in ``addressee`` alone; a row filed before the register may
    # name it in ``addressee_agency`` (plugins.petitions.tables).
    addressed = (
        ()
        if agency is None
        else (sa.func.coalesce(petitions.c.addressee_agency, petitions.c.addressee) == agency,)
    )

    async def write(conn: AsyncConnection) -> None:
        await transition(
            conn,
            petitions,
            petition_id,
            values,
            allowed_from=[expected.value],
            refusal=refusal,
            also=addressed,
        )

    await request.app[WRITER].submit(write)
    request.app[CACHE].invalidate(_cache_key(petition_id))


async def _current(request: web.Request, petition_id: str) -> web.Response:
    async with request.app[DATABASE].read() as conn:
        row = await fetch_petition(conn, petition_id)
    if row is None:
        raise NotFound("no such petition")
    return json_response(petition_document(row, utcnow()))
