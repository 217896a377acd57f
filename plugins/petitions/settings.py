"""The petition channel's settings: Kazakhstan's defaults, every figure in config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SECTION = "petitions"

Level = Literal["central", "local"]


def _default_levels() -> dict[str, Level]:
    return {"government": "central", "maslikhat": "local", "district_akimat": "local"}


def _default_response_days() -> dict[Level, int]:
    return {"central": 40, "local": 20}


class PetitionSettings(BaseModel):
    """Figures marked (verify) in DESIGN.md come from press reports of the law, not its text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thresholds: dict[str, int] = Field(
        default_factory=lambda: {"government": 50_000, "maslikhat": 5_000, "district_akimat": 2_500}
    )
    addressee_levels: dict[str, Level] = Field(default_factory=_default_levels)
    response_working_days: dict[Level, int] = Field(default_factory=_default_response_days)
    moderation_working_days: int = Field(default=20, ge=1)
    co_signer_minimum: int = Field(default=50, ge=1)
    co_signer_working_days: int = Field(default=10, ge=1)
    collection_days: int = Field(default=90, ge=1)
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    cache_max_age: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _every_addressee_has_a_level(self) -> PetitionSettings:
        missing = set(self.thresholds) ^ set(self.addressee_levels)
        if missing:
            raise ValueError(
                "thresholds and addressee_levels must name the same addressees; "
                f"differs: {', '.join(sorted(missing))}"
            )
        if any(t < 1 for t in self.thresholds.values()):
            raise ValueError("every threshold is at least 1")
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size cannot exceed max_page_size")
        return self
