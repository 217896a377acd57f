"""HTTP handlers of the petition channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiohttp import web

from core import keys
from core.api import (
    AGENCY,
    CITIZEN,
    MODERATOR,
    caller,
    emit_event,
    moderate_texts,
    require,
    utcnow,
)
from core.bodies import json_response, query_model, read_model
from core.cache import RenderedBody, cached_response, render
from core.errors import Conflict, Forbidden, NotFound, invalid
from core.idempotency import already_stored, resource_id
from core.identity import Identity, Role
from core.moderation import Verdict
from core.settings import SettingsError
from plugins.petitions.lifecycle import LISTED, PRIVATE, Status
from plugins.petitions.models import (
    ModerationDecision,
    PageQuery,
    PetitionAnswer,
    PetitionCreate,
    PetitionListQuery,
)
from plugins.petitions.settings import answer_level
from plugins.petitions.signing import SignOutcome, SignRequest, signing_kind
from plugins.petitions.store import fetch_petition, list_petitions, list_signers, petition_document
from plugins.petitions.tables import petitions

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from core.agencies import AgencyRegister
    from core.storage.writer import BatchKind
    from core.workdays import WorkCalendar
    from plugins.petitions.settings import Level, PetitionSettings


@dataclass(frozen=True, slots=True)
class PetitionChannel:
    settings: PetitionSettings
    calendar: WorkCalendar
    signing: BatchKind[SignRequest, SignOutcome]
    # Each registered agency's threshold, computed once: the register changes only at a restart.
    thresholds: dict[str, int]

    @classmethod
    def build(
        cls, settings: PetitionSettings, calendar: WorkCalendar, register: AgencyRegister
    ) -> PetitionChannel:
        thresholds: dict[str, int] = {}
        levels: dict[str, Level] = {}
        for code in register.codes():
            agency = register.get(code)
            assert agency is not None
            rule = settings.threshold_rule(agency)
            if rule is None:
                raise SettingsError(
                    f"petitions.thresholds: no rule for agency {code!r} "
                    f"(give {agency.level}.{agency.kind} or {agency.level})"
                )
            region = register.region_of(code)
            if rule.population_percent is not None and region is None:
                raise SettingsError(
                    f"petitions.thresholds: agency {code!r} has a percentage threshold "
                    "but no region with a population"
                )
            thresholds[code] = rule.signatures_needed(region.population if region else None)
            levels[code] = answer_level(agency)
        return cls(
            settings=settings,
            calendar=calendar,
            signing=signing_kind(settings, calendar, levels),
            thresholds=thresholds,
        )


CHANNEL: web.AppKey[PetitionChannel] = web.AppKey("petitions.channel")


@dataclass(frozen=True, slots=True)
class Visibility:
    """Who may see a cached petition: enough to decide without another read."""

    status: Status
    author_hash: str


def _cache_key(petition_id: str) -> str:
    return f"petitions:{petition_id}"


async def create_petition(request: web.Request) -> web.Response:
    citizen = require(request, CITIZEN)
    channel = request.app[CHANNEL]
    body = await read_model(request, PetitionCreate)
    if body.addressee not in channel.thresholds:
        raise invalid(
            "addressee", "no registered agency has this code; GET /api/v1/agencies lists them"
        )
    if body.addressee_agency is not None and body.addressee_agency != body.addressee:
        raise invalid("addressee_agency", "when given, it must equal addressee")
    verdict = await moderate_texts(request, "petitions", {"title": body.title, "text": body.text})
    now = utcnow()
    petition_id = resource_id(request)
    row: dict[str, object] = {
        "id": petition_id,
        "title": body.title,
        "text": body.text,
        "addressee": body.addressee,
        "addressee_agency": body.addressee,
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

    if await request.app[keys.WRITER].submit(insert):
        emit_event(request, "petition.filed", petition_id, {"addressee": body.addressee})
    async with request.app[keys.DATABASE].read() as conn:
        stored = await fetch_petition(conn, petition_id)
    assert stored is not None
    return json_response(
        petition_document(stored, now),
        status=201,
        headers={"Location": f"/api/v1/petitions/{petition_id}"},
    )


async def get_petition(request: web.Request) -> web.Response:
    petition_id = request.match_info["id"]
    app = request.app

    async def load() -> RenderedBody:
        async with app[keys.DATABASE].read() as conn:
            row = await fetch_petition(conn, petition_id)
        if row is None:
            return render(None)
        return render(
            petition_document(row, utcnow()), meta=Visibility(Status(row.status), row.author_hash)
        )

    rendered = await app[keys.CACHE].get(_cache_key(petition_id), load)
    visibility: Visibility | None = rendered.meta
    if visibility is None:
        raise NotFound("no such petition")
    if visibility.status in PRIVATE:
        if not _may_see_private(caller(request), visibility.author_hash):
            raise NotFound("no such petition")
        return web.Response(
            body=rendered.body,
            content_type="application/json",
            headers={"Cache-Control": "private, no-store"},
        )
    settings = app[CHANNEL].settings
    return cached_response(
        request, rendered, max_age=settings.cache_max_age, cache_key=_cache_key(petition_id)
    )


def _may_see_private(identity: Identity | None, author_hash: str) -> bool:
    if identity is None:
        return False
    return identity.role is Role.MODERATOR or identity.subject == author_hash


async def list_all(request: web.Request) -> web.Response:
    query = query_model(request, PetitionListQuery)
    channel = request.app[CHANNEL]
    identity = caller(request)
    if query.status is not None and query.status not in LISTED:
        if identity is None or identity.role is not Role.MODERATOR:
            raise Forbidden(
                "only moderators list petitions in status {status}",
                params={"status": query.status},
            )
        statuses = frozenset({query.status})
    else:
        statuses = frozenset({query.status}) if query.status is not None else LISTED
    limit = min(query.limit or channel.settings.default_page_size, channel.settings.max_page_size)
    async with request.app[keys.DATABASE].read() as conn:
        rows, next_cursor = await list_petitions(
            conn,
            statuses=statuses,
            addressee=query.addressee,
            sort=query.sort,
            limit=limit,
            cursor=query.cursor,
        )
    now = utcnow()
    return json_response(
        {"items": [petition_document(row, now) for row in rows], "next_cursor": next_cursor}
    )


async def sign(request: web.Request) -> web.Response:
    citizen = require(request, CITIZEN)
    channel = request.app[CHANNEL]
    outcome = await request.app[keys.WRITER].submit_batched(
        channel.signing,
        SignRequest(request.match_info["id"], citizen.subject, citizen.public_name, utcnow()),
    )
    if outcome.created:
        request.app[keys.METRICS].counter("qatysu_petition_signatures_total").inc()
    if outcome.became is not None:
        request.app[keys.CACHE].invalidate(_cache_key(outcome.petition_id))
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


async def signers(request: web.Request) -> web.Response:
    petition_id = request.match_info["id"]
    query = query_model(request, PageQuery)
    settings = request.app[CHANNEL].settings
    limit = min(query.limit or settings.default_page_size, settings.max_page_size)
    async with request.app[keys.DATABASE].read() as conn:
        row = await fetch_petition(conn, petition_id)
        if row is None or Status(row.status) in PRIVATE:
            raise NotFound("no such petition")
        items, next_cursor = await list_signers(conn, petition_id, limit=limit, cursor=query.cursor)
    return json_response({"items": items, "next_cursor": next_cursor})


async def moderate(request: web.Request) -> web.Response:
    moderator = require(request, MODERATOR)
    channel = request.app[CHANNEL]
    body = await read_model(request, ModerationDecision)
    if body.decision == "reject" and body.reason_code is None:
        raise invalid("reason_code", "a rejection must cite its statutory ground")
    if body.decision == "approve" and body.reason_code is not None:
        raise invalid("reason_code", "only a rejection cites a ground")
    petition_id = request.match_info["id"]
    now = utcnow()
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


async def respond(request: web.Request) -> web.Response:
    agency = require(request, AGENCY)
    body = await read_model(request, PetitionAnswer)
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
    """Move a petition out of ``expected``; 404 if it is unknown, 409 from any other status."""

    async def write(conn: AsyncConnection) -> None:
        row = await fetch_petition(conn, petition_id)
        if row is None:
            raise NotFound("no such petition")
        if row.status != expected.value:
            raise Conflict(
                "the petition is {status}, not {expected}",
                extra={"petition_status": row.status},
                params={"status": row.status, "expected": expected.value},
            )
        # Rows filed before the register named their agency in ``addressee`` alone.
        if agency is not None and (row.addressee_agency or row.addressee) != agency:
            raise Forbidden("the petition is addressed to another agency")
        await conn.execute(
            sa.update(petitions)
            .where(petitions.c.id == petition_id, petitions.c.status == expected.value)
            .values(**values)
        )

    await request.app[keys.WRITER].submit(write)
    request.app[keys.CACHE].invalidate(_cache_key(petition_id))


async def _current(request: web.Request, petition_id: str) -> web.Response:
    async with request.app[keys.DATABASE].read() as conn:
        row = await fetch_petition(conn, petition_id)
    if row is None:
        raise NotFound("no such petition")
    return json_response(petition_document(row, utcnow()))
