"""Kazakhstan as a jurisdiction: the contract of ``core.identity.jurisdiction`` answered from the
``[kazakhstan]`` settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.sdk import Addressee, Message, Region
from plugins.kazakhstan.iin import iin_problem, is_iin_shaped, synthetic_iin
from plugins.kazakhstan.register import AgencyRegister
from plugins.kazakhstan.workdays import WorkCalendar

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence

    from core.sdk import Identity, Term
    from plugins.kazakhstan.settings import KazakhstanSettings


# A Message, so that the catalogues' check sees the template (core.wire.i18n).
INVALID_IIN = Message("the token's subject is not a valid IIN: {problem}")


class Kazakhstan:
    """The register, the calendar, the IIN and the identity checks of the Republic of
    Kazakhstan. Built once per app from its validated settings section."""

    name = "kazakhstan"
    national_id_refusal = INVALID_IIN

    def __init__(self, settings: KazakhstanSettings) -> None:
        self.settings = settings
        self.register = AgencyRegister(settings)
        self.calendar = WorkCalendar(settings.calendar)
        # The register changes only with the config, that is, at a restart: worked out once.
        self._addressees = {code: self._addressee(code) for code in self.register.codes()}
        self._regions = {
            code: Region(code=code, names=region.names.model_dump(), population=region.population)
            for code, region in settings.regions.items()
        }

    def _addressee(self, code: str) -> Addressee:
        agency = self.register.get(code)
        assert agency is not None
        rule = self.settings.threshold_rule(agency)
        # The settings check that every agency has a rule it can be given.
        assert rule is not None
        region = self.register.region_of(code)
        return Addressee(
            code=code,
            names=agency.names.model_dump(),
            level=agency.level,
            kind=agency.kind,
            # Republican bodies answer in the central term; akimats and maslikhats locally.
            central=agency.level == "republic",
            threshold=rule.signatures_needed(
                region.population if region else None, agency.population
            ),
            region=agency.region,
        )

    def addressee(self, code: str) -> Addressee | None:
        return self._addressees.get(code)

    def addressee_codes(self) -> Sequence[str]:
        return self.register.codes()

    def region(self, code: str) -> Region | None:
        return self._regions.get(code)

    @property
    def timezone(self) -> dt.tzinfo:
        return self.calendar.timezone

    def is_working_day(self, day: dt.date) -> bool:
        return self.calendar.is_working_day(day)

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        return self.calendar.add_working_days(start, days)

    def term_end(self, start: dt.datetime, term: Term) -> dt.datetime:
        return self.calendar.term_end(start, term)

    def national_id_problem(self, value: str) -> str | None:
        return iin_problem(value)

    def resembles_national_id(self, value: str) -> bool:
        # The national identity provider uses the IIN as ``sub`` for everyone, officials too.
        return is_iin_shaped(value)

    def sample_national_id(self, n: int) -> str:
        return synthetic_iin(n)

    def check_identity(self, identity: Identity) -> None:
        """An agency token must name a registered agency."""
        self.register.check_token(identity)
