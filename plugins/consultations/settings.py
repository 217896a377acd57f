"""The consultation channel's settings: Kazakhstan's defaults, every figure in config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.sdk import Term

SECTION = "consultations"


class ConsultationSettings(BaseModel):
    """``min_discussion_days`` follows the Rules for posting and public discussion of draft
    regulatory legal acts on the "Open NPA" portal (Order No. 849 of the Minister of Justice,
    30 September 2021, under Article 18 of the Law "On Legal Acts"): at least 10 calendar days
    (verify). A draft on public services is discussed for ``public_service_discussion``
    instead (``plugins.consultations.discussion``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_discussion_days: int = Field(default=10, ge=0)
    min_discussion_source: str = "built-in default; config/default.toml gives the statutory source"
    public_service_discussion: Term = Term(
        days=10,
        unit="working",
        source="built-in default; config/default.toml gives the statutory source",
    )
    max_thread_depth: int = Field(default=3, ge=1, le=10)
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    cache_max_age: int = Field(default=1, ge=0)
    sweep_interval_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _page_sizes_agree(self) -> ConsultationSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size cannot exceed max_page_size")
        return self
