"""Public consultation on draft acts: numbered sections, threaded comments, one vote per
citizen, and the agency's report that answers the comments and closes the discussion.

Registered like any third-party plugin: through ``qatysu_*`` hook implementations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.api import AGENCY, CITIZEN, MODERATOR

from core import keys
from core.admission.priority import Priority, RatePolicy
from core.background import periodic_ctx
from core.hookspecs import hookimpl
from core.routing import RoutePolicy
from plugins.consultations import handlers, models
from plugins.consultations.settings import SECTION, ConsultationSettings
from plugins.consultations.sweeper import record_closed
from plugins.consultations.tables import MIGRATIONS

if TYPE_CHECKING:
    from aiohttp import web
    from pydantic import BaseModel

    from core.hookspecs import CleanupContext
    from core.routing import RouteRegistry
    from core.storage.migrations import MigrationSet

VOTE = RoutePolicy(
    priority=Priority.CRITICAL, rate=RatePolicy(name="consultation-vote", rate=1.0, burst=10)
)
COMMENT = RoutePolicy(
    priority=Priority.CRITICAL, rate=RatePolicy(name="consultation-comment", rate=0.2, burst=10)
)
OFFICIAL = RoutePolicy(
    priority=Priority.CRITICAL, rate=RatePolicy(name="consultation-official", rate=10.0, burst=50)
)
READ = RoutePolicy(
    priority=Priority.NORMAL, rate=RatePolicy(name="consultation-read", rate=50.0, burst=100)
)
LIST = RoutePolicy(
    priority=Priority.SHEDDABLE, rate=RatePolicy(name="consultation-list", rate=10.0, burst=20)
)

BASE = "/api/v1/consultations"


@hookimpl
def qatysu_settings_section() -> tuple[str, type[BaseModel]]:
    """The [consultations] section: discussion period, thread depth and page sizes."""
    return SECTION, ConsultationSettings


@hookimpl
def qatysu_migrations() -> MigrationSet:
    """The consultations, sections, comments, votes and report answers tables."""
    return MIGRATIONS


@hookimpl
def qatysu_add_routes(routes: RouteRegistry, app: web.Application) -> None:
    """The consultation routes: votes, comments and official writes critical, reads normal,
    lists sheddable."""
    app[handlers.SETTINGS] = app[keys.PLUGINS].section(SECTION, ConsultationSettings)
    tags = ("consultations",)
    one = BASE + "/{id}"
    routes.add(
        "POST",
        BASE,
        handlers.open_consultation,
        name="consultations.open",
        summary="Open a draft act for public discussion",
        policy=OFFICIAL,
        roles=AGENCY,
        body=models.ConsultationCreate,
        responses={201: models.Consultation},
        tags=tags,
        idempotent=True,
    )
    routes.add(
        "GET",
        BASE,
        handlers.list_all,
        name="consultations.list",
        summary="List consultations, newest first, with filters and a cursor",
        policy=LIST,
        query=models.ConsultationListQuery,
        responses={200: models.ConsultationPage},
        tags=tags,
    )
    routes.add(
        "GET",
        one,
        handlers.get_consultation,
        name="consultations.get",
        summary="Read one consultation with its sections, tallies and report (ETag, Cache-Control)",
        policy=READ,
        responses={200: models.Consultation, 304: "Not modified", 404: "No such consultation"},
        tags=tags,
    )
    routes.add(
        "POST",
        one + "/comments",
        handlers.post_comment,
        name="consultations.comment",
        summary="Comment on the draft or reply to a comment",
        policy=COMMENT,
        roles=CITIZEN,
        body=models.CommentCreate,
        responses={
            201: models.Comment,
            404: "No such consultation",
            409: "The consultation is not open",
        },
        tags=tags,
        idempotent=True,
    )
    routes.add(
        "GET",
        one + "/comments",
        handlers.list_thread,
        name="consultations.comments",
        summary="The comments in thread order, oldest first",
        policy=LIST,
        query=models.CommentListQuery,
        responses={
            200: models.CommentPage,
            403: "include_hidden without a moderator's token",
            404: "No such consultation",
        },
        tags=tags,
    )
    routes.add(
        "POST",
        one + "/comments/{comment_id}/hide",
        handlers.hide_comment,
        name="consultations.hide_comment",
        summary="Hide an abusive comment from the public; it stays on record",
        policy=OFFICIAL,
        roles=MODERATOR,
        body=models.CommentHiding,
        responses={200: models.Comment, 404: "No such comment", 409: "Already hidden"},
        tags=tags,
    )
    for method in ("PUT", "POST"):
        routes.add(
            method,
            one + "/votes",
            handlers.vote,
            name=f"consultations.vote_{method.lower()}",
            summary="Vote on the draft, once per citizen; voting again changes the vote",
            policy=VOTE,
            roles=CITIZEN,
            body=models.VoteCast,
            responses={
                201: models.VoteReceipt,
                200: models.VoteReceipt,
                404: "No such consultation",
                409: "The consultation is not open",
            },
            tags=tags,
        )
    routes.add(
        "POST",
        one + "/report",
        handlers.publish_report,
        name="consultations.report",
        summary="Publish the report on the discussion; it closes the consultation",
        policy=OFFICIAL,
        roles=AGENCY,
        body=models.ReportCreate,
        responses={
            201: models.Consultation,
            403: "Another agency's consultation",
            404: "No such consultation",
            409: "Not yet open, or the report is already published",
        },
        tags=tags,
    )


@hookimpl
def qatysu_cleanup_ctx(app: web.Application) -> Sequence[CleanupContext]:
    """The sweeper that records and announces consultations whose period ran out."""
    interval = app[handlers.SETTINGS].sweep_interval_seconds
    return [periodic_ctx("consultations-sweeper", interval, record_closed)]


@hookimpl
async def qatysu_demo_seed(app: web.Application) -> Sequence[str]:
    """An open consultation with sections, a comment thread and votes."""
    from plugins.consultations.demo import seed_consultation

    return await seed_consultation(app)
