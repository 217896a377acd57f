"""Freedonia: a tiny fake country, to show that core and a channel run on any jurisdiction.

It answers the ``core.identity.jurisdiction`` contract with nothing Kazakh in it: two
addressees, one region, Monday-to-Friday working days in UTC with no holidays, and national
identifiers of the form ``FD-`` and six digits. ``FreedoniaPlugin`` provides it through the
``qatysu_jurisdiction`` hook, as a country's plugin would. This module imports only core, so
that a process that uses it can check that no module of ``plugins.kazakhstan`` was imported.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from core.identity.identities import Role
from core.identity.jurisdiction import Addressee, Region
from core.plugin_host.hookspecs import hookimpl
from core.wire.errors import Forbidden

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.identity.identities import Identity
    from core.identity.jurisdiction import Term
    from core.settings import Settings

CAPITAL = Region(
    code="capital", names={"kk": "Capital", "ru": "Capital", "en": "Capital"}, population=100
)
ADDRESSEES = {
    "chancellery": Addressee(
        code="chancellery",
        names={"kk": "Chancellery", "ru": "Chancellery", "en": "Chancellery"},
        level="national",
        kind="executive",
        central=True,
        threshold=3,
    ),
    "capital-council": Addressee(
        code="capital-council",
        names={"kk": "Capital council", "ru": "Capital council", "en": "Capital council"},
        level="municipal",
        kind="council",
        central=False,
        threshold=2,
        region="capital",
    ),
}


class Freedonia:
    """A fake country: the contract answered from constants."""

    name = "freedonia"
    timezone = dt.UTC
    national_id_refusal = "the token's subject is not a Freedonian identifier: {problem}"

    def addressee(self, code: str) -> Addressee | None:
        return ADDRESSEES.get(code)

    def addressee_codes(self) -> Sequence[str]:
        return sorted(ADDRESSEES)

    def region(self, code: str) -> Region | None:
        return CAPITAL if code == CAPITAL.code else None

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        day = start.astimezone(dt.UTC).date()
        while days:
            day += dt.timedelta(days=1)
            days -= self.is_working_day(day)
        return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)

    def term_end(self, start: dt.datetime, term: Term) -> dt.datetime:
        if term.unit == "working":
            return self.add_working_days(start, term.days)
        end = start.astimezone(dt.UTC).date() + dt.timedelta(days=term.days)
        return dt.datetime.combine(end, dt.time(23, 59, 59), tzinfo=dt.UTC)

    def national_id_problem(self, value: str) -> str | None:
        well_formed = value.startswith("FD-") and len(value) == 9 and value[3:].isdigit()
        return None if well_formed else "a Freedonian identifier is FD- and six digits"

    def resembles_national_id(self, value: str) -> bool:
        return value.startswith("FD-")

    def sample_national_id(self, n: int) -> str:
        return f"FD-{n % 1_000_000:06d}"

    def check_identity(self, identity: Identity) -> None:
        if identity.role is Role.AGENCY and identity.agency not in ADDRESSEES:
            raise Forbidden("the token's agency is not a Freedonian addressee")


class FreedoniaPlugin:
    """Provides Freedonia through the jurisdiction hook."""

    @hookimpl
    def qatysu_jurisdiction(self, settings: Settings) -> Freedonia:
        """Freedonia, whatever the settings."""
        return Freedonia()
