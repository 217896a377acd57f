"""The petition channel's settings: Kazakhstan's defaults, every figure in config.

An addressee's threshold, and whether it answers in the central or the local term, are the
jurisdiction's (``core.identity.jurisdiction.Addressee``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.sdk import Term

SECTION = "petitions"

Level = Literal["central", "local"]


class MonthsTerm(BaseModel):
    """A statutory term in calendar months, and its source (``plugins.petitions.collection``
    says when it starts and ends)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    months: int = Field(ge=1)
    source: str = Field(min_length=1)


_BUILT_IN = "built-in default; config/default.toml gives the statutory source"


def _default_response_terms() -> dict[Level, Term]:
    return {"central": Term(days=40, source=_BUILT_IN), "local": Term(days=20, source=_BUILT_IN)}


class PetitionSettings(BaseModel):
    """Figures marked (verify) in config/default.toml are not confirmed against the law's text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    response_terms: dict[Level, Term] = Field(default_factory=_default_response_terms)
    moderation_term: Term = Term(days=20, source=_BUILT_IN)
    # Restricted collection: co-signers needed to go public, within co_signer_term.
    co_signer_minimum: int = Field(default=50, ge=1)
    co_signer_term: Term = Term(days=10, source=_BUILT_IN)
    # Months, from the day the petition goes public (plugins.petitions.collection).
    collection_term: MonthsTerm = MonthsTerm(months=6, source=_BUILT_IN)
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    cache_max_age: int = Field(default=1, ge=0)
    # Live counts (GET /api/v1/petitions/{id}/live): at most one count event per petition per
    # interval; region counts every regions interval; a heartbeat comment when idle.
    live_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    live_regions_interval_seconds: float = Field(default=10.0, gt=0, le=3600)
    live_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    # The reconnection delay a stream suggests, spread by up to the jitter.
    live_retry_ms: int = Field(default=3000, ge=100)
    live_retry_jitter_ms: int = Field(default=2000, ge=0)
    live_max_streams: int = Field(default=10_000, ge=1)
    # A stream ends after this long and its client reconnects with Last-Event-ID, missing
    # nothing: long-lived streams then spread over instances added since they opened.
    live_max_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    live_max_streams_per_address: int = Field(default=8, ge=1)
    # Regions with fewer signatures are merged into "other", so no small count points at anyone.
    region_minimum: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _page_sizes_agree(self) -> PetitionSettings:
        if set(self.response_terms) != {"central", "local"}:
            raise ValueError("response_terms needs a term for central and for local bodies")
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size cannot exceed max_page_size")
        return self
