"""What the petition channel keeps per app: its settings, calendar, signing batch and thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from core.sdk import JURISDICTION, METRICS, VERIFIER
from plugins.petitions.signer_cursors import SignerCursors
from plugins.petitions.signing import SignOutcome, SignRequest, signing_kind
from plugins.petitions.watchers import LiveCounts

if TYPE_CHECKING:
    from prometheus_client import Counter

    from core.sdk import BatchKind, WorkingDays
    from plugins.petitions.settings import Level, PetitionSettings


@dataclass(frozen=True, slots=True)
class PetitionState:
    settings: PetitionSettings
    calendar: WorkingDays
    signing: BatchKind[SignRequest, SignOutcome]
    # Each registered agency's threshold, computed once: the register changes only at a restart.
    thresholds: dict[str, int]
    signatures: Counter
    signer_cursors: SignerCursors
    live: LiveCounts

    @classmethod
    def build(cls, settings: PetitionSettings, app: web.Application) -> PetitionState:
        jurisdiction = app[JURISDICTION]
        calendar = jurisdiction
        thresholds: dict[str, int] = {}
        levels: dict[str, Level] = {}
        for code in jurisdiction.addressee_codes():
            addressee = jurisdiction.addressee(code)
            assert addressee is not None
            thresholds[code] = addressee.threshold
            levels[code] = "central" if addressee.central else "local"
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
