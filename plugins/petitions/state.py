"""What the petition channel keeps per app: its settings, calendar, signing batch and thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from core.sdk import AGENCIES, CALENDAR, METRICS, VERIFIER, SettingsError
from plugins.petitions.settings import answer_level
from plugins.petitions.signer_cursors import SignerCursors
from plugins.petitions.signing import SignOutcome, SignRequest, signing_kind
from plugins.petitions.watchers import LiveCounts

if TYPE_CHECKING:
    from prometheus_client import Counter

    from core.sdk import BatchKind, WorkCalendar
    from plugins.petitions.settings import Level, PetitionSettings


@dataclass(frozen=True, slots=True)
class PetitionState:
    settings: PetitionSettings
    calendar: WorkCalendar
    signing: BatchKind[SignRequest, SignOutcome]
    # Each registered agency's threshold, computed once: the register changes only at a restart.
    thresholds: dict[str, int]
    signatures: Counter
    signer_cursors: SignerCursors
    live: LiveCounts

    @classmethod
    def build(cls, settings: PetitionSettings, app: web.Application) -> PetitionState:
        register = app[AGENCIES]
        calendar = app[CALENDAR]
        thresholds: dict[str, int] = {}
        levels: dict[str, Level] = {}
        for code in register.codes():
            agency = register.get(code)
            assert agency is not None
            rule = settings.threshold_rule(agency)
            if rule is None:
                raise SettingsError(
                    f"petitions.thresholds: no rule for agency {code!r} "
                    f"(give {agency.level}.{agency.kind} or {agency.level})"
                )
            region = register.region_of(code)
            if rule.population_percent is not None and region is None:
                raise SettingsError(
                    f"petitions.thresholds: agency {code!r} has a percentage threshold "
                    "but no region with a population"
                )
            thresholds[code] = rule.signatures_needed(region.population if region else None)
            levels[code] = answer_level(agency)
        live = LiveCounts(settings, app)
        app.on_shutdown.append(live.on_shutdown)
        return cls(
            live=live,
            settings=settings,
            calendar=calendar,
            signing=signing_kind(settings, calendar, levels),
            thresholds=thresholds,
            signatures=app[METRICS].add_counter(
                "qatysu_petition_signatures_total", "Petition signatures committed."
            ),
            signer_cursors=SignerCursors.for_server(app[VERIFIER]),
        )


STATE: web.AppKey[PetitionState] = web.AppKey("petitions.state")
