"""The Republic of Kazakhstan as Qatysu's jurisdiction: the agency and region register (and
``GET /api/v1/agencies``), petition thresholds by an agency's level and kind, the working-day
calendar, the IIN and its control digit, and the checks on tokens' claims.

Loaded by name like the built-in channels; core and the channels reach it only through
``app[JURISDICTION]`` (``core.identity.jurisdiction``). Its settings are the ``[kazakhstan]``
section (``plugins.kazakhstan.settings``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.sdk import JURISDICTION, hookimpl, validate_section
from plugins.kazakhstan.calendar_watch import calendar_watch_ctx, declare
from plugins.kazakhstan.jurisdiction import Kazakhstan
from plugins.kazakhstan.register import REGISTER
from plugins.kazakhstan.register import routes as register_routes
from plugins.kazakhstan.settings import SECTION, KazakhstanSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from aiohttp import web
    from pydantic import BaseModel

    from core.sdk import Jurisdiction, RouteRegistry, Settings


@hookimpl
def qatysu_settings_section() -> tuple[str, type[BaseModel]]:
    """The ``[kazakhstan]`` section: calendar, register and thresholds."""
    return SECTION, KazakhstanSettings


@hookimpl
def qatysu_jurisdiction(settings: Settings) -> Jurisdiction:
    """Kazakhstan's rules, from the validated ``[kazakhstan]`` section."""
    return Kazakhstan(validate_section(SECTION, KazakhstanSettings, settings))


@hookimpl
def qatysu_startup(app: web.Application) -> None:
    """Keep the register where the register's route finds it; declare the calendar's gauge."""
    jurisdiction = app[JURISDICTION]
    if not isinstance(jurisdiction, Kazakhstan):
        raise TypeError(f"the app's jurisdiction is {jurisdiction.name}, not Kazakhstan")
    app[REGISTER] = jurisdiction.register
    declare(app, jurisdiction.settings.calendar, jurisdiction.calendar.timezone)


@hookimpl
def qatysu_cleanup_ctx(
    app: web.Application,
) -> Sequence[Callable[[web.Application], AsyncIterator[None]]]:
    """Check daily how far ahead the holiday calendar reaches."""
    return [calendar_watch_ctx]


@hookimpl
def qatysu_add_routes(routes: RouteRegistry) -> None:
    """``GET /api/v1/agencies``: the register."""
    routes.include(register_routes)
