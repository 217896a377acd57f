"""The jurisdiction contract: what the channels and core need to know about a country.

Core knows no country. Exactly one plugin answers ``qatysu_jurisdiction`` with an object of
this shape (``plugins/kazakhstan`` is Kazakhstan's): the register of addressees and their
petition thresholds, the regions, the working-day calendar that counts statutory terms, the
format of the national identifier, and the checks an identity must pass. Channels reach it
through ``app[JURISDICTION]`` and never import the plugin.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from core.identity.identities import Identity


class Term(BaseModel):
    """A statutory term and its source (law, article, and the date of the text checked).

    In config: ``{ days = 15, unit = "working", source = "..." }``. Working days skip the
    jurisdiction's weekend and holidays; how a calendar-day term ending on a day off is counted
    is the jurisdiction's rule (``Jurisdiction.term_end``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int = Field(ge=1)
    unit: Literal["working", "calendar"] = "working"
    source: str = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Region:
    """A region of the register and the population its percentage thresholds come from."""

    code: str
    names: Mapping[str, str]
    population: int


@dataclass(frozen=True, slots=True)
class Addressee:
    """A body a citizen may address, and who may answer for it.

    ``level`` and ``kind`` are the jurisdiction's own words (published, not interpreted);
    ``central`` says whether it answers in a central body's term rather than a local one's;
    ``threshold`` is the signatures a petition to it needs.
    """

    code: str
    names: Mapping[str, str]
    level: str
    kind: str
    central: bool
    threshold: int
    region: str | None = None


class WorkingDays(Protocol):
    """The working-day calendar statutory terms are counted on."""

    @property
    def timezone(self) -> dt.tzinfo:
        """The zone whose dates the calendar counts: a day starts and ends there."""
        ...

    def is_working_day(self, day: dt.date) -> bool:
        """True unless ``day`` is a weekend day or a holiday."""
        ...

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        """The end (UTC) of the ``days``-th working day after ``start``'s local date."""
        ...

    def term_end(self, start: dt.datetime, term: Term) -> dt.datetime:
        """When ``term`` runs out (UTC) for something filed at ``start``."""
        ...


def end_of_day(work: WorkingDays, day: dt.date) -> dt.datetime:
    """When a term whose last day is ``day`` runs out (23:59:59 in the calendar's zone), in UTC."""
    local = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=work.timezone)
    return local.astimezone(dt.UTC)


def first_working_day(work: WorkingDays, day: dt.date) -> dt.date:
    """``day``, or the next working day when it is a day off: where a term's last day moves."""
    while not work.is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or that month's last day when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Jurisdiction(WorkingDays, Protocol):
    """One country's rules, as core and the channels ask for them."""

    @property
    def name(self) -> str:
        """The jurisdiction's name, for messages."""
        ...

    @property
    def national_id_refusal(self) -> str:
        """The detail of the 401 for a citizen token whose subject is not a national
        identifier: a message template whose ``{problem}`` field ``national_id_problem`` fills."""
        ...

    def addressee(self, code: str) -> Addressee | None:
        """The registered addressee with this code, or None."""
        ...

    def addressee_codes(self) -> Sequence[str]:
        """Every registered addressee's code, sorted."""
        ...

    def region(self, code: str) -> Region | None:
        """The registered region with this code, or None."""
        ...

    def national_id_problem(self, value: str) -> str | None:
        """Why ``value`` is not a well-formed national identifier, or None when it is one."""
        ...

    def resembles_national_id(self, value: str) -> bool:
        """True when ``value`` is near enough to a national identifier that it must be hashed."""
        ...

    def sample_national_id(self, n: int) -> str:
        """A well-formed national identifier made from ``n``, distinct per n: for demos."""
        ...

    def check_identity(self, identity: Identity) -> None:
        """Raise a problem (``core.wire.errors``) when the jurisdiction refuses this identity, from
        whichever identity provider: called on every request that carries one."""
        ...
