"""The agency register: who a citizen may address, who may answer, and the regions they serve.

Agencies and regions come from config (``[agencies.<code>]``, ``[regions.<code>]``). A petition
or an information request may only be addressed to a registered agency, and an agency token
whose ``agency`` claim is not registered is refused: an agency that does not exist can neither
be asked nor answer. ``GET /api/v1/agencies`` publishes the register so that clients offer the
right addressees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel

from core import keys
from core.http import keys as http_keys
from core.http.cache import RenderedBody, cache_key, cached_response, render
from core.identity.tokens import Role
from core.plugin_host.routing import Routes, normal
from core.settings import AgencyKind, AgencyLevel, Names
from core.wire.errors import Forbidden

if TYPE_CHECKING:
    from core.identity.tokens import Identity
    from core.settings import AgencySettings, RegionSettings, Settings

READ = normal("agencies-read", rate=10.0, burst=20)
# The register changes only with the config, that is, at a restart.
MAX_AGE_SECONDS = 300
CACHE_KEY = cache_key("agencies", "register")


class UnregisteredAgency(Forbidden):
    """An agency token whose ``agency`` claim names no registered agency."""

    slug = "unregistered-agency"
    title = "Unregistered agency"


class AgencyRegister:
    """The configured agencies and regions, looked up by code."""

    def __init__(self, settings: Settings) -> None:
        self._agencies = dict(settings.agencies)
        self._regions = dict(settings.regions)
        self.rendered: RenderedBody = render(self.document())

    def __contains__(self, code: object) -> bool:
        return code in self._agencies

    def __len__(self) -> int:
        return len(self._agencies)

    def get(self, code: str) -> AgencySettings | None:
        return self._agencies.get(code)

    def region_of(self, code: str) -> RegionSettings | None:
        agency = self._agencies.get(code)
        if agency is None or agency.region is None:
            return None
        return self._regions.get(agency.region)

    def has_region(self, code: str) -> bool:
        return code in self._regions

    def region(self, code: str) -> RegionSettings | None:
        return self._regions.get(code)

    def region_codes(self) -> list[str]:
        return sorted(self._regions)

    def codes(self) -> list[str]:
        return sorted(self._agencies)

    def document(self) -> dict[str, Any]:
        items = []
        for code in self.codes():
            agency = self._agencies[code]
            region = None
            if agency.region is not None:
                settings = self._regions[agency.region]
                region = {
                    "code": agency.region,
                    "names": settings.names.model_dump(),
                    "population": settings.population,
                    "population_source": settings.population_source,
                }
            items.append(
                {
                    "code": code,
                    "names": agency.names.model_dump(),
                    "level": agency.level,
                    "kind": agency.kind,
                    "region": region,
                }
            )
        return {"items": items}

    def check_token(self, identity: Identity) -> None:
        """Refuse an agency identity whose agency is not registered."""
        if identity.role is Role.AGENCY and identity.agency not in self._agencies:
            raise UnregisteredAgency(
                "the token's agency {agency} is not in the agency register",
                params={"agency": repr(identity.agency)},
            )


class Region(BaseModel):
    """A region and the population its percentage thresholds are computed from."""

    code: str
    names: Names
    population: int
    population_source: str


class Agency(BaseModel):
    """A registered agency."""

    code: str
    names: Names
    level: AgencyLevel
    kind: AgencyKind
    region: Region | None


class AgencyList(BaseModel):
    """Every registered agency, by code."""

    items: list[Agency]


routes = Routes("/api/v1/agencies", tags=("agencies",))


@routes.get(
    "",
    name="agencies.list",
    summary="The agency register: codes, names in kk/ru/en, levels and regions",
    policy=READ,
    responses={200: AgencyList, 304: "Not modified"},
)
async def list_agencies(request: web.Request) -> web.Response:
    register = request.app[keys.AGENCIES]

    async def load() -> RenderedBody:
        return register.rendered

    # Through the micro-cache, so that the fast lane may answer the next anonymous reads too.
    rendered = await request.app[http_keys.CACHE].get(CACHE_KEY, load)
    return cached_response(request, rendered, max_age=MAX_AGE_SECONDS, cache_key=CACHE_KEY)
