"""E-information: items agencies publish (searchable, in kk/ru/en), and citizens' requests for
access to information, answered by the agency within a statutory term of working days.

Registered like any third-party plugin: through ``qatysu_*`` hook implementations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.api import AGENCY, CITIZEN

from core import keys
from core.admission.priority import Priority, RatePolicy
from core.hookspecs import hookimpl
from core.routing import RoutePolicy
from plugins.information import item_handlers, models, request_handlers
from plugins.information.channel import CHANNEL, InformationChannel
from plugins.information.migrations import MIGRATIONS
from plugins.information.settings import SECTION, InformationSettings

if TYPE_CHECKING:
    from aiohttp import web
    from pydantic import BaseModel

    from core.routing import RouteRegistry
    from core.storage.migrations import MigrationSet

PUBLISH = RoutePolicy(
    priority=Priority.CRITICAL, rate=RatePolicy(name="information-publish", rate=10.0, burst=50)
)
REPLY = RoutePolicy(
    priority=Priority.CRITICAL, rate=RatePolicy(name="information-reply", rate=10.0, burst=50)
)
FILE = RoutePolicy(
    priority=Priority.CRITICAL, rate=RatePolicy(name="information-request-file", rate=0.05, burst=5)
)
READ = RoutePolicy(
    priority=Priority.NORMAL, rate=RatePolicy(name="information-read", rate=50.0, burst=100)
)
LIST = RoutePolicy(
    priority=Priority.SHEDDABLE, rate=RatePolicy(name="information-list", rate=10.0, burst=20)
)

ITEMS = item_handlers.BASE
REQUESTS = request_handlers.BASE


@hookimpl
def qatysu_settings_section() -> tuple[str, type[BaseModel]]:
    """The [information] section: the answer term, page sizes and cache lifetime."""
    return SECTION, InformationSettings


@hookimpl
def qatysu_migrations() -> MigrationSet:
    """Published items with their full-text index, and information requests."""
    return MIGRATIONS


@hookimpl
def qatysu_add_routes(routes: RouteRegistry, app: web.Application) -> None:
    """Item and request routes: writes critical, single reads normal, lists and search sheddable."""
    settings = app[keys.PLUGINS].section(SECTION, InformationSettings)
    app[CHANNEL] = InformationChannel(settings=settings, calendar=app[keys.CALENDAR])
    _add_item_routes(routes)
    _add_request_routes(routes)


def _add_item_routes(routes: RouteRegistry) -> None:
    tags = ("information",)
    routes.add(
        "POST",
        ITEMS,
        item_handlers.publish_item,
        name="information.publish",
        summary="Publish an item, with optional translations",
        policy=PUBLISH,
        roles=AGENCY,
        body=models.ItemPublish,
        responses={201: models.Item},
        tags=tags,
        idempotent=True,
    )
    routes.add(
        "GET",
        ITEMS,
        item_handlers.list_all,
        name="information.list",
        summary="List items by agency, category or language; q= searches full text",
        policy=LIST,
        query=models.ItemListQuery,
        responses={200: models.ItemPage},
        tags=tags,
    )
    routes.add(
        "GET",
        ITEMS + "/{id}",
        item_handlers.get_item,
        name="information.get",
        summary="Read one item (ETag, Cache-Control)",
        policy=READ,
        responses={200: models.Item, 304: "Not modified", 404: "No such item"},
        tags=tags,
    )


def _add_request_routes(routes: RouteRegistry) -> None:
    tags = ("information-requests",)
    not_yours = "No such request, or not one the caller may see"
    routes.add(
        "POST",
        REQUESTS,
        request_handlers.file_request,
        name="information_requests.file",
        summary="Ask an agency for information; due in the statutory working days",
        policy=FILE,
        roles=CITIZEN,
        body=models.RequestFile,
        responses={201: models.InformationRequest},
        tags=tags,
        idempotent=True,
    )
    routes.add(
        "GET",
        REQUESTS,
        request_handlers.list_own,
        name="information_requests.list",
        summary="The agency's queue by due date (queue=agency) or the citizen's own "
        "requests (mine=true)",
        policy=LIST,
        roles=AGENCY | CITIZEN,
        query=models.RequestListQuery,
        responses={200: models.RequestPage},
        tags=tags,
    )
    # The literal /public routes are added before /{id} so "public" is never taken for an id.
    routes.add(
        "GET",
        REQUESTS + "/public",
        request_handlers.list_public,
        name="information_requests.public_list",
        summary="Requests made public with their answers, newest first (no requester)",
        policy=LIST,
        query=models.PublicRequestQuery,
        responses={200: models.PublicRequestPage},
        tags=tags,
    )
    routes.add(
        "GET",
        REQUESTS + "/public/{id}",
        request_handlers.get_public,
        name="information_requests.public_get",
        summary="Read one public request (no requester)",
        policy=READ,
        responses={200: models.PublicInformationRequest, 404: "No such public request"},
        tags=tags,
    )
    routes.add(
        "GET",
        REQUESTS + "/{id}",
        request_handlers.get_request,
        name="information_requests.get",
        summary="Read a request: its requester and the agency asked only, 404 for others",
        policy=READ,
        roles=AGENCY | CITIZEN,
        responses={200: models.InformationRequest, 404: not_yours},
        tags=tags,
    )
    for action, handler, summary, body in (
        ("progress", request_handlers.start_progress, "Start work on a registered request", None),
        ("answer", request_handlers.answer, "Answer a request", models.RequestAnswer),
        (
            "refusal",
            request_handlers.refuse,
            "Refuse a request, giving the reason",
            models.RequestRefusal,
        ),
    ):
        routes.add(
            "POST",
            f"{REQUESTS}/{{id}}/{action}",
            handler,
            name=f"information_requests.{action}",
            summary=summary,
            policy=REPLY,
            roles=AGENCY,
            body=body,
            responses={
                200: models.InformationRequest,
                404: not_yours,
                409: "The request's status does not allow this",
            },
            tags=tags,
        )


@hookimpl
async def qatysu_demo_seed(app: web.Application) -> Sequence[str]:
    """Demo items in kk, ru and en, and requests in every status."""
    from plugins.information.demo import seed_information

    return await seed_information(app)
