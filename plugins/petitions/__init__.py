"""Online petitions: filed, moderated, signed once per citizen, answered at a threshold.

Registered like any third-party plugin: through ``qatysu_*`` hook implementations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core import keys
from core.admission.priority import Priority, RatePolicy
from core.api import AGENCY, CITIZEN, MODERATOR
from core.background import periodic_ctx
from core.hookspecs import hookimpl
from core.routing import RoutePolicy
from plugins.petitions import handlers, models
from plugins.petitions.settings import SECTION, PetitionSettings
from plugins.petitions.sweeper import expire_overdue
from plugins.petitions.tables import MIGRATIONS

if TYPE_CHECKING:
    from aiohttp import web
    from pydantic import BaseModel

    from core.hookspecs import CleanupContext
    from core.routing import RouteRegistry
    from core.storage.migrations import MigrationSet

SIGN = RoutePolicy(
    priority=Priority.CRITICAL, rate=RatePolicy(name="petition-sign", rate=1.0, burst=10)
)
FILE = RoutePolicy(
    priority=Priority.CRITICAL, rate=RatePolicy(name="petition-file", rate=0.05, burst=5)
)
OFFICIAL = RoutePolicy(
    priority=Priority.CRITICAL, rate=RatePolicy(name="official-write", rate=10.0, burst=50)
)
READ = RoutePolicy(
    priority=Priority.NORMAL, rate=RatePolicy(name="public-read", rate=50.0, burst=100)
)
LIST = RoutePolicy(
    priority=Priority.SHEDDABLE, rate=RatePolicy(name="public-list", rate=10.0, burst=20)
)

BASE = "/api/v1/petitions"


@hookimpl
def qatysu_settings_section() -> tuple[str, type[BaseModel]]:
    """The [petitions] section: thresholds, terms and page sizes."""
    return SECTION, PetitionSettings


@hookimpl
def qatysu_migrations() -> MigrationSet:
    """The petitions and signatures tables."""
    return MIGRATIONS


@hookimpl
def qatysu_add_routes(routes: RouteRegistry, app: web.Application) -> None:
    """The petition routes, signing and filing critical, reads normal, lists sheddable."""
    settings = app[keys.PLUGINS].section(SECTION, PetitionSettings)
    app[handlers.CHANNEL] = handlers.PetitionChannel.build(
        settings, app[keys.CALENDAR], app[keys.AGENCIES]
    )
    app[keys.METRICS].add_counter(
        "qatysu_petition_signatures_total", "Petition signatures committed."
    )
    tags = ("petitions",)
    routes.add(
        "POST",
        BASE,
        handlers.create_petition,
        name="petitions.create",
        summary="File a petition (it goes to moderation)",
        policy=FILE,
        roles=CITIZEN,
        body=models.PetitionCreate,
        responses={201: models.Petition},
        tags=tags,
        idempotent=True,
    )
    routes.add(
        "GET",
        BASE,
        handlers.list_all,
        name="petitions.list",
        summary="List petitions with filters, order and a cursor",
        policy=LIST,
        query=models.PetitionListQuery,
        responses={
            200: models.PetitionPage,
            403: "A status the public does not see, without a moderator's token",
        },
        tags=tags,
    )
    routes.add(
        "GET",
        BASE + "/{id}",
        handlers.get_petition,
        name="petitions.get",
        summary="Read one petition (ETag, Cache-Control)",
        policy=READ,
        responses={200: models.Petition, 304: "Not modified", 404: "No such petition"},
        tags=tags,
    )
    routes.add(
        "POST",
        BASE + "/{id}/signatures",
        handlers.sign,
        name="petitions.sign",
        summary="Sign a petition, once per citizen",
        policy=SIGN,
        roles=CITIZEN,
        responses={
            201: models.SignatureReceipt,
            200: models.SignatureReceipt,
            404: "No such petition",
            409: "The petition cannot be signed",
        },
        tags=tags,
    )
    routes.add(
        "GET",
        BASE + "/{id}/signatures",
        handlers.signers,
        name="petitions.signers",
        summary="The public signer list: first name and initial only",
        policy=LIST,
        query=models.PageQuery,
        responses={200: models.SignerPage},
        tags=tags,
    )
    routes.add(
        "POST",
        BASE + "/{id}/moderation",
        handlers.moderate,
        name="petitions.moderate",
        summary="Approve or reject a petition in moderation",
        policy=OFFICIAL,
        roles=MODERATOR,
        body=models.ModerationDecision,
        responses={200: models.Petition, 404: "No such petition", 409: "Not in moderation"},
        tags=tags,
    )
    routes.add(
        "POST",
        BASE + "/{id}/response",
        handlers.respond,
        name="petitions.respond",
        summary="The addressee's answer to a petition at its threshold",
        policy=OFFICIAL,
        roles=AGENCY,
        body=models.PetitionAnswer,
        responses={200: models.Petition, 404: "No such petition", 409: "Not awaiting an answer"},
        tags=tags,
    )


@hookimpl
def qatysu_cleanup_ctx(app: web.Application) -> Sequence[CleanupContext]:
    """The sweeper that expires petitions whose term ran out."""
    interval = app[handlers.CHANNEL].settings.sweep_interval_seconds
    return [periodic_ctx("petitions-sweeper", interval, expire_overdue)]


@hookimpl
async def qatysu_demo_seed(app: web.Application) -> Sequence[str]:
    """Demo petitions in every state."""
    from plugins.petitions.demo import seed_petitions

    return await seed_petitions(app)
