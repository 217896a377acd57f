"""HTTP handlers of the consultation channel, each declared with its route."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiohttp import web

from core.sdk import (
    CACHE,
    DATABASE,
    WRITER,
    Conflict,
    Forbidden,
    Identity,
    NotFound,
    QueryRoles,
    Role,
    Routes,
    Unprocessable,
    Verdict,
    already_stored,
    as_utc,
    cache_key,
    cached_document,
    critical,
    emit_event,
    field_error,
    invalid,
    json_response,
    moderate_texts,
    normal,
    page_response,
    page_size,
    resource_id,
    sheddable,
    transition,
    utcnow,
)
from plugins.consultations import models
from plugins.consultations.discussion import DraftKind, earliest_close, minimum
from plugins.consultations.lifecycle import Status, status_at, status_condition
from plugins.consultations.models import (
    CommentCreate,
    CommentHiding,
    CommentListQuery,
    ConsultationCreate,
    ConsultationListQuery,
    ReportCreate,
    SectionDraft,
    VoteCast,
)
from plugins.consultations.settings import SECTION
from plugins.consultations.state import STATE
from plugins.consultations.store import (
    closed_meanwhile,
    comment_document,
    comments_of,
    consultation_document,
    ensure_open,
    fetch_comment,
    fetch_consultation,
    list_comments,
    list_consultations,
    new_comment_id,
    section_exists,
    summary_document,
    thread_key,
)
from plugins.consultations.tables import comments, consultations, report_answers, sections
from plugins.consultations.voting import cast_vote

if TYPE_CHECKING:
    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

    from core.sdk import Problem
    from plugins.consultations.settings import ConsultationSettings
    from plugins.consultations.state import ConsultationState

VOTE = critical("consultation-vote", rate=1.0, burst=10)
COMMENT = critical("consultation-comment", rate=0.2, burst=10)
OFFICIAL = critical("consultation-official", rate=10.0, burst=50)
READ = normal("consultation-read", rate=50.0, burst=100)
LIST = sheddable("consultation-list", rate=10.0, burst=20)

MODERATORS = frozenset({Role.MODERATOR})

routes = Routes("/api/v1/consultations", tags=("consultations",))


def _cache_key(consultation_id: str) -> str:
    return cache_key(SECTION, consultation_id)


@routes.post(
    "",
    name="consultations.open",
    summary="Open a draft act for public discussion",
    policy=OFFICIAL,
    roles=Role.AGENCY,
    body=ConsultationCreate,
    responses={201: models.Consultation},
    idempotent=True,
)
async def open_consultation(
    request: web.Request, identity: Identity, body: ConsultationCreate
) -> web.Response:
    agency = identity
    channel = request.app[STATE]
    numbers = section_numbers(body.sections)
    now = utcnow()
    opens_at, closes_at = body.opens_at.astimezone(dt.UTC), body.closes_at.astimezone(dt.UTC)
    check_discussion_period(opens_at, closes_at, now, body.kind, channel)
    consultation_id = resource_id(request)
    row = {
        "id": consultation_id,
        "agency": agency.agency,
        "title": body.title,
        "summary": body.summary,
        "opens_at": opens_at,
        "closes_at": closes_at,
        "created_at": now,
        "kind": body.kind.value,
        "support_count": 0,
        "oppose_count": 0,
        "neutral_count": 0,
        "comment_count": 0,
    }
    section_rows = [
        {"consultation_id": consultation_id, "number": number, "heading": s.heading, "text": s.text}
        for number, s in sorted(zip(numbers, body.sections, strict=True), key=lambda p: p[0])
    ]

    async def insert(conn: AsyncConnection) -> bool:
        if await already_stored(conn, consultations.c.id, consultation_id):
            return False
        await conn.execute(consultations.insert().values(**row))
        await conn.execute(sections.insert(), section_rows)
        return True

    if await request.app[WRITER].submit(insert):
        emit_event(
            request,
            "consultation.opened",
            consultation_id,
            {
                "agency": agency.agency,
                "opens_at": opens_at.isoformat(),
                "closes_at": closes_at.isoformat(),
            },
        )
    return json_response(
        await _document(request, consultation_id),
        status=201,
        headers={"Location": f"/api/v1/consultations/{consultation_id}"},
    )


def section_numbers(drafts: list[SectionDraft]) -> list[int]:
    """Each section's number: as given (1..n, each once), or 1..n in order when none is given."""
    given = [s.number for s in drafts]
    if all(number is None for number in given):
        return list(range(1, len(drafts) + 1))
    errors = []
    seen: Counter[int] = Counter()
    for index, number in enumerate(given):
        field = f"sections.{index}.number"
        if number is None:
            errors.append(field_error(field, "number every section, or none of them"))
        elif number > len(drafts):
            errors.append(field_error(field, "numbers run from 1 to {count}", count=len(drafts)))
        elif seen[number]:
            errors.append(
                field_error(field, "section number {number} is used twice", number=number)
            )
        if number is not None:
            seen[number] += 1
    if errors:
        raise Unprocessable(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
        )
    return [number for number in given if number is not None]


def check_discussion_period(
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    now: dt.datetime,
    kind: DraftKind,
    channel: ConsultationState,
) -> None:
    """The discussion must close after it opens and last the legal minimum of its kind; the
    minimum counts from the later of ``opens_at`` and now, so a backdated opening cannot
    shorten it."""
    if closes_at <= opens_at:
        raise invalid("closes_at", "must be after opens_at")
    start = max(opens_at, now)
    if closes_at < earliest_close(kind, start, channel.settings, channel.calendar):
        rule = minimum(kind, channel.settings)
        if rule.unit == "working":
            raise invalid(
                "closes_at",
                "the discussion must last at least {days} working days from when it opens",
                days=rule.days,
            )
        raise invalid(
            "closes_at",
            "the discussion must last at least {days} calendar days from when it opens",
            days=rule.days,
        )


@routes.get(
    "",
    name="consultations.list",
    summary="List consultations, newest first, with filters and a cursor",
    policy=LIST,
    query=ConsultationListQuery,
    responses={200: models.ConsultationPage},
)
async def list_all(request: web.Request, query: ConsultationListQuery) -> web.Response:
    limit = page_size(query.limit, request.app[STATE].settings)
    now = utcnow()
    async with request.app[DATABASE].read() as conn:
        rows, next_cursor = await list_consultations(
            conn,
            status=query.status,
            agency=query.agency,
            now=now,
            limit=limit,
            cursor=query.cursor,
        )
    return page_response(request, [summary_document(row, now) for row in rows], next_cursor)


@routes.get(
    "/{id}",
    name="consultations.get",
    summary="Read one consultation with its sections, tallies and report (ETag, Cache-Control)",
    policy=READ,
    responses={200: models.Consultation, 304: "Not modified", 404: "No such consultation"},
)
async def get_consultation(request: web.Request) -> web.Response:
    consultation_id = request.match_info["id"]

    async def fetch(conn: AsyncConnection) -> dict[str, Any] | None:
        row = await fetch_consultation(conn, consultation_id)
        return None if row is None else await consultation_document(conn, row, utcnow())

    return await cached_document(
        request,
        _cache_key(consultation_id),
        fetch,
        max_age=request.app[STATE].settings.cache_max_age,
        missing="no such consultation",
    )


@routes.post(
    "/{id}/comments",
    name="consultations.comment",
    summary="Comment on the draft or reply to a comment",
    policy=COMMENT,
    roles=Role.CITIZEN,
    body=CommentCreate,
    responses={
        201: models.Comment,
        404: "No such consultation",
        409: "The consultation is not open",
    },
    idempotent=True,
)
async def post_comment(
    request: web.Request, identity: Identity, body: CommentCreate
) -> web.Response:
    citizen = identity
    consultation_id = request.match_info["id"]
    settings = request.app[STATE].settings
    async with request.app[DATABASE].read() as conn:
        await ensure_open(conn, consultation_id, utcnow())
        section, parent_key, depth = await _placement(conn, consultation_id, body, settings)
    verdict = await moderate_texts(request, "consultations", {"text": body.text})
    comment_id = resource_id(request, new_comment_id)
    now = utcnow()
    row = {
        "id": comment_id,
        "consultation_id": consultation_id,
        "section": section,
        "parent_id": body.parent_id,
        "depth": depth,
        "thread_key": thread_key(parent_key, comment_id, now),
        "text": body.text,
        "author_hash": citizen.subject,
        "author_name": citizen.public_name,
        "flagged": verdict.verdict is Verdict.FLAG,
        "created_at": now,
    }

    async def insert(conn: AsyncConnection) -> None:
        if await already_stored(conn, comments.c.id, comment_id):
            return
        counted = await conn.execute(
            sa.update(consultations)
            .where(consultations.c.id == consultation_id, status_condition(Status.OPEN, now))
            .values(comment_count=consultations.c.comment_count + 1)
        )
        if counted.rowcount != 1:
            raise await closed_meanwhile(conn, consultation_id, now)
        await conn.execute(comments.insert().values(**row))

    await request.app[WRITER].submit(insert)
    request.app[CACHE].invalidate(_cache_key(consultation_id))
    stored = await _comment(request, consultation_id, comment_id)
    return json_response(
        comment_document(stored),
        status=201,
        headers={"Location": f"/api/v1/consultations/{consultation_id}/comments"},
    )


async def _placement(
    conn: AsyncConnection,
    consultation_id: str,
    body: CommentCreate,
    settings: ConsultationSettings,
) -> tuple[int | None, str, int]:
    """The section, parent thread key and depth of a new comment; 422 naming the bad field."""
    if body.parent_id is None:
        if body.section is not None and not await section_exists(
            conn, consultation_id, body.section
        ):
            raise invalid("section", "the draft has no section {section}", section=body.section)
        return body.section, "", 1
    parent = await fetch_comment(conn, consultation_id, body.parent_id)
    if parent is None:
        raise invalid("parent_id", "no such comment in this consultation")
    if parent.hidden_at is not None:
        raise invalid("parent_id", "that comment was hidden by a moderator")
    if parent.depth + 1 > settings.max_thread_depth:
        raise invalid(
            "parent_id",
            "a thread is at most {depth} comments deep",
            depth=settings.max_thread_depth,
        )
    if body.section is not None and body.section != parent.section:
        raise invalid("section", "a reply is about the same section as the comment it answers")
    return parent.section, parent.thread_key, parent.depth + 1


@routes.get(
    "/{id}/comments",
    name="consultations.comments",
    summary="The comments in thread order, oldest first",
    policy=LIST,
    query=CommentListQuery,
    query_roles=QueryRoles(
        roles=MODERATORS, asks=lambda query: query.include_hidden, description="include_hidden"
    ),
    responses={
        200: models.CommentPage,
        403: "include_hidden without a moderator's token",
        404: "No such consultation",
    },
)
async def list_thread(request: web.Request, query: CommentListQuery) -> web.Response:
    consultation_id = request.match_info["id"]
    limit = page_size(query.limit, request.app[STATE].settings)
    async with request.app[DATABASE].read() as conn:
        if await fetch_consultation(conn, consultation_id) is None:
            raise NotFound("no such consultation")
        rows, next_cursor = await list_comments(
            conn,
            consultation_id,
            section=query.section,
            include_hidden=query.include_hidden,
            limit=limit,
            cursor=query.cursor,
        )
    return page_response(
        request,
        [comment_document(row, moderation=query.include_hidden) for row in rows],
        next_cursor,
    )


@routes.post(
    "/{id}/comments/{comment_id}/hide",
    name="consultations.hide_comment",
    summary="Hide an abusive comment from the public; it stays on record",
    policy=OFFICIAL,
    roles=Role.MODERATOR,
    body=CommentHiding,
    responses={200: models.Comment, 404: "No such comment", 409: "Already hidden"},
)
async def hide_comment(
    request: web.Request, identity: Identity, body: CommentHiding
) -> web.Response:
    moderator = identity
    consultation_id = request.match_info["id"]
    comment_id = request.match_info["comment_id"]
    now = utcnow()

    def refusal(row: Row[Any] | None) -> Problem:
        if row is None or row.consultation_id != consultation_id:
            return NotFound("no such comment in this consultation")
        return Conflict("the comment is already hidden")

    async def hide(conn: AsyncConnection) -> None:
        if await fetch_consultation(conn, consultation_id) is None:
            raise NotFound("no such consultation")
        await transition(
            conn,
            comments,
            comment_id,
            {"hidden_at": now, "hidden_reason": body.reason, "hidden_by": moderator.subject},
            allowed_from=None,
            also=[comments.c.consultation_id == consultation_id, comments.c.hidden_at.is_(None)],
            refusal=refusal,
        )
        await conn.execute(
            sa.update(consultations)
            .where(consultations.c.id == consultation_id)
            .values(comment_count=consultations.c.comment_count - 1)
        )

    await request.app[WRITER].submit(hide)
    request.app[CACHE].invalidate(_cache_key(consultation_id))
    stored = await _comment(request, consultation_id, comment_id)
    return json_response(comment_document(stored, moderation=True))


@routes.post(
    "/{id}/votes",
    name="consultations.vote",
    summary="Vote on the draft, once per citizen; voting again changes the vote",
    policy=VOTE,
    roles=Role.CITIZEN,
    body=VoteCast,
    responses={
        201: models.VoteReceipt,
        200: models.VoteReceipt,
        404: "No such consultation",
        409: "The consultation is not open",
    },
)
async def vote(request: web.Request, identity: Identity, body: VoteCast) -> web.Response:
    citizen = identity
    consultation_id = request.match_info["id"]
    now = utcnow()
    outcome = await request.app[WRITER].submit(
        lambda conn: cast_vote(conn, consultation_id, citizen.subject, body.position, now)
    )
    request.app[CACHE].invalidate(_cache_key(consultation_id))
    return json_response(
        {
            "consultation_id": consultation_id,
            "position": body.position.value,
            "changed": outcome.changed,
            "votes": outcome.tallies,
        },
        status=201 if outcome.created else 200,
    )


@routes.post(
    "/{id}/report",
    name="consultations.report",
    summary="Publish the report on the discussion; it closes the consultation",
    policy=OFFICIAL,
    roles=Role.AGENCY,
    body=ReportCreate,
    responses={
        201: models.Consultation,
        403: "Another agency's consultation",
        404: "No such consultation",
        409: "Not yet open, or the report is already published",
    },
)
async def publish_report(
    request: web.Request, identity: Identity, body: ReportCreate
) -> web.Response:
    agency = identity
    consultation_id = request.match_info["id"]
    answered = [answer.comment_id for answer in body.answers]
    _refuse_repeated_answers(answered)
    now = utcnow()
    channel = request.app[STATE]
    async with request.app[DATABASE].read() as conn:
        row = await fetch_consultation(conn, consultation_id)
        if row is None:
            raise NotFound("no such consultation")
        if row.agency != agency.agency:
            raise Forbidden("the consultation belongs to another agency")
        early = _report_refusal(row, now, channel)
        if early is not None:
            raise early
        belonging = await comments_of(conn, consultation_id, answered)
    foreign = [
        field_error(f"answers.{index}.comment_id", "no such comment in this consultation")
        for index, comment_id in enumerate(answered)
        if comment_id not in belonging
    ]
    if foreign:
        raise Unprocessable(
            "{count} answer(s) name comments of no such consultation",
            errors=foreign,
            params={"count": len(foreign)},
        )

    def refused(row: Row[Any] | None) -> Problem:
        if row is None:
            return NotFound("no such consultation")
        return _report_refusal(row, now, channel) or Conflict("the report cannot be published")

    async def publish(conn: AsyncConnection) -> bool:
        await transition(
            conn,
            consultations,
            consultation_id,
            {"report_summary": body.summary, "report_published_at": now},
            allowed_from=None,
            also=[consultations.c.report_published_at.is_(None), consultations.c.opens_at <= now],
            refusal=refused,
        )
        if body.answers:
            await conn.execute(
                report_answers.insert(),
                [
                    {
                        "consultation_id": consultation_id,
                        "comment_id": a.comment_id,
                        "ordinal": index,
                        "answer": a.answer,
                    }
                    for index, a in enumerate(body.answers)
                ],
            )
        closed = await conn.execute(
            sa.update(consultations)
            .where(
                consultations.c.id == consultation_id, consultations.c.close_recorded_at.is_(None)
            )
            .values(close_recorded_at=now)
        )
        return closed.rowcount == 1

    closed_now = await request.app[WRITER].submit(publish)
    request.app[CACHE].invalidate(_cache_key(consultation_id))
    emit_event(
        request,
        "consultation.report_published",
        consultation_id,
        {"agency": agency.agency, "answers": len(body.answers)},
    )
    if closed_now:
        emit_event(request, "consultation.closed", consultation_id, {"by": "report"})
    return json_response(await _document(request, consultation_id), status=201)


def _refuse_repeated_answers(comment_ids: list[str]) -> None:
    seen: set[str] = set()
    errors = []
    for index, comment_id in enumerate(comment_ids):
        if comment_id in seen:
            errors.append(
                field_error(f"answers.{index}.comment_id", "this comment is already answered above")
            )
        seen.add(comment_id)
    if errors:
        raise Unprocessable("a comment is answered more than once", errors=errors)


def _report_refusal(row: Row[Any], now: dt.datetime, channel: ConsultationState) -> Conflict | None:
    if row.report_published_at is not None:
        return Conflict(
            "the report of this consultation is already published",
            extra={"consultation_status": Status.CLOSED.value},
        )
    status = status_at(row, now)
    if status is Status.UPCOMING:
        return Conflict(
            "the discussion has not opened yet",
            extra={"consultation_status": Status.UPCOMING.value},
        )
    allowed_from = report_allowed_from(row, channel)
    if now < allowed_from:
        return Conflict(
            "the report closes the discussion, which must last at least {days} days: "
            "it may be published from {allowed_from}",
            params={
                "days": minimum(DraftKind(row.kind), channel.settings).days,
                "allowed_from": allowed_from.isoformat(),
            },
            extra={
                "consultation_status": status.value,
                "report_allowed_from": allowed_from.isoformat(),
            },
        )
    return None


def report_allowed_from(row: Row[Any], channel: ConsultationState) -> dt.datetime:
    """When the statutory minimum discussion of the draft's kind has passed, counted from the
    later of the opening and the creation (a backdated opening shortens nothing), or the
    closing time."""
    opens_at, created_at, closes_at = (
        as_utc(row.opens_at),
        as_utc(row.created_at),
        as_utc(row.closes_at),
    )
    assert opens_at is not None
    assert created_at is not None
    assert closes_at is not None
    start = max(opens_at, created_at)
    earliest = earliest_close(DraftKind(row.kind), start, channel.settings, channel.calendar)
    return min(closes_at, earliest)


async def _document(request: web.Request, consultation_id: str) -> dict[str, Any]:
    async with request.app[DATABASE].read() as conn:
        row = await fetch_consultation(conn, consultation_id)
        if row is None:
            raise NotFound("no such consultation")
        return await consultation_document(conn, row, utcnow())


async def _comment(request: web.Request, consultation_id: str, comment_id: str) -> Row[Any]:
    async with request.app[DATABASE].read() as conn:
        row = await fetch_comment(conn, consultation_id, comment_id)
    if row is None:
        raise NotFound("no such comment in this consultation")
    return row
