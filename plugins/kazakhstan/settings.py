"""The ``[kazakhstan]`` settings section: the working-day calendar, the agency and region
register, and the petition thresholds by an agency's level and kind.

In config: ``[kazakhstan.calendar]``, ``[kazakhstan.agencies.<code>]``,
``[kazakhstan.regions.<code>]`` and ``[kazakhstan.thresholds]``; every figure carries its
source. The register must agree with itself and with the thresholds: a regional agency names a
registered region, and every agency has a threshold rule it can be given (a percentage needs a
region's population). A register that does not agree stops the server at start, naming the
setting.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.sdk import Names

SECTION = "kazakhstan"

AgencyLevel = Literal["republic", "region", "city", "district"]
AgencyKind = Literal["government", "ministry", "akimat", "maslikhat"]
REGISTER_CODE = r"^[a-z0-9][a-z0-9-]{0,63}$"
_BUILT_IN = "built-in default; config/default.toml gives the statutory source"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarSettings(_Section):
    """Weekend days, days off on working days (``holidays``), and weekend days the government
    has made working days by moving a day off (``working_days``), each list with its source."""

    weekend: tuple[int, ...] = (5, 6)
    holidays: tuple[dt.date, ...] = ()
    holidays_source: str = ""
    working_days: tuple[dt.date, ...] = ()
    working_days_source: str = ""
    timezone: str = "Asia/Almaty"

    @field_validator("weekend")
    @classmethod
    def _weekday_numbers(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(day < 0 or day > 6 for day in value):
            raise ValueError("weekend days are 0 (Monday) to 6 (Sunday)")
        return value

    @model_validator(mode="after")
    def _working_days_are_transferred_weekend_days(self) -> CalendarSettings:
        # A listed working day on a weekday, or one that is also a holiday, is a typo in a
        # date: the calendar would silently mean something the decree did not say.
        holidays = set(self.holidays)
        for day in self.working_days:
            if day.weekday() not in self.weekend:
                raise ValueError(
                    f"calendar.working_days: {day.isoformat()} is a {day:%A}, not a weekend "
                    "day; list only weekend days the government made working days"
                )
            if day in holidays:
                raise ValueError(
                    f"calendar.working_days: {day.isoformat()} is also in calendar.holidays"
                )
        return self

    @property
    def last_holiday(self) -> dt.date | None:
        """The last day the holiday list covers; past it, only weekends are days off."""
        return max(self.holidays, default=None)


class RegionSettings(_Section):
    """A region (oblast, or a city of republican significance) and the source of its population."""

    names: Names
    population: int = Field(ge=1)
    population_source: str = Field(min_length=1)


class AgencySettings(_Section):
    """A registered agency: who may be addressed, and who may answer.

    ``population`` is the population of the unit a city or district body serves, with its
    source: a threshold rule with a small-unit clause needs it.
    """

    names: Names
    level: AgencyLevel
    kind: AgencyKind
    region: str | None = None
    population: int | None = Field(default=None, ge=1)
    population_source: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _population_has_a_source(self) -> AgencySettings:
        if (self.population is None) != (self.population_source is None):
            raise ValueError("population and population_source go together")
        return self


class ThresholdRule(_Section):
    """Signatures an addressee needs: a fixed number, or a share of its region's population.

    A fixed number may carry a small-unit clause: a unit of fewer than ``small_unit_below``
    residents needs ``small_unit_percent`` of its own population instead (an akimat of a
    district of 30,000 needs 5% of them, not 2,500).
    """

    signatures: int | None = Field(default=None, ge=1)
    population_percent: float | None = Field(default=None, gt=0, le=100)
    small_unit_below: int | None = Field(default=None, ge=1)
    small_unit_percent: float | None = Field(default=None, gt=0, le=100)
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> ThresholdRule:
        if (self.signatures is None) == (self.population_percent is None):
            raise ValueError("a threshold gives either signatures or population_percent")
        if (self.small_unit_below is None) != (self.small_unit_percent is None):
            raise ValueError("small_unit_below and small_unit_percent go together")
        if self.small_unit_below is not None and self.signatures is None:
            raise ValueError("a small-unit clause refines a fixed number of signatures")
        return self

    @property
    def needs_unit_population(self) -> bool:
        return self.small_unit_below is not None

    def signatures_needed(self, region_population: int | None, unit_population: int | None) -> int:
        """The threshold; "not less than N%" of a population rounds up."""
        if self.signatures is not None:
            if (
                self.small_unit_below is not None
                and self.small_unit_percent is not None
                and unit_population is not None
                and unit_population < self.small_unit_below
            ):
                return _percent_of(unit_population, self.small_unit_percent)
            return self.signatures
        assert self.population_percent is not None
        assert region_population is not None
        return _percent_of(region_population, self.population_percent)


def _percent_of(population: int, percent: float) -> int:
    return max(1, math.ceil(population * percent / 100))


def _default_thresholds() -> dict[str, ThresholdRule]:
    source = _BUILT_IN
    return {
        "republic": ThresholdRule(signatures=50_000, source=source),
        "region.akimat": ThresholdRule(population_percent=1.0, source=source),
        "region.maslikhat": ThresholdRule(population_percent=2.0, source=source),
        "city.akimat": ThresholdRule(signatures=2_500, source=source),
        "city.maslikhat": ThresholdRule(signatures=5_000, source=source),
        "district.akimat": ThresholdRule(signatures=2_500, source=source),
        "district.maslikhat": ThresholdRule(signatures=5_000, source=source),
    }


class KazakhstanSettings(_Section):
    """Figures marked (verify) in config/default.toml are not confirmed against the law's text."""

    calendar: CalendarSettings = CalendarSettings()
    regions: dict[str, RegionSettings] = Field(default_factory=dict)
    agencies: dict[str, AgencySettings] = Field(default_factory=dict)
    # Keyed by an agency's "level.kind" ("region.akimat"), or its level alone ("republic").
    thresholds: dict[str, ThresholdRule] = Field(default_factory=_default_thresholds)

    @model_validator(mode="after")
    def _register_is_consistent(self) -> KazakhstanSettings:
        for table, codes in (("regions", self.regions), ("agencies", self.agencies)):
            for code in codes:
                if not re.match(REGISTER_CODE, code):
                    raise ValueError(
                        f"{table}.{code}: a code is lowercase letters, digits and hyphens"
                    )
        for code, agency in self.agencies.items():
            if agency.level != "republic":
                if agency.region is None:
                    raise ValueError(
                        f"agencies.{code}.region: a {agency.level} agency needs a region"
                    )
                if agency.region not in self.regions:
                    raise ValueError(
                        f"agencies.{code}.region: no region {agency.region!r} in [regions]"
                    )
            rule = self.threshold_rule(agency)
            if rule is None:
                raise ValueError(
                    f"thresholds: no rule for agency {code!r} "
                    f"(give {agency.level}.{agency.kind} or {agency.level})"
                )
            if rule.population_percent is not None and agency.region is None:
                raise ValueError(
                    f"thresholds: agency {code!r} has a percentage threshold "
                    "but no region with a population"
                )
            if rule.needs_unit_population and agency.population is None:
                raise ValueError(
                    f"agencies.{code}.population: its threshold depends on the population of "
                    f"the unit it serves (under {rule.small_unit_below}: "
                    f"{rule.small_unit_percent:g}%); give population and population_source"
                )
        return self

    def threshold_rule(self, agency: AgencySettings) -> ThresholdRule | None:
        """The most specific rule for this agency: its level and kind, else its level."""
        return self.thresholds.get(f"{agency.level}.{agency.kind}") or self.thresholds.get(
            agency.level
        )
