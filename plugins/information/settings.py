"""The information channel's settings: Kazakhstan's defaults, every figure in config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.sdk import Term

SECTION = "information"


class ExtensionRule(BaseModel):
    """How far an agency may extend the answer term, and until when it may decide to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    total_months: int = Field(
        default=2, ge=1, description="the term with its extension, in months from filing"
    )
    notice_working_days: int = Field(
        default=3,
        ge=1,
        description="working days after filing within which the requester is told, and so "
        "within which the term may be extended",
    )
    source: str = Field(min_length=1)


class InformationSettings(BaseModel):
    """The statutory answer term and its extension, and the channel's page sizes and cache
    lifetime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The Administrative Procedural-Process Code, art. 76; config/default.toml says what was
    # checked.
    answer_term: Term = Term(
        days=15, source="built-in default; config/default.toml gives the statutory source"
    )
    extension: ExtensionRule = ExtensionRule(
        source="built-in default; config/default.toml gives the statutory source"
    )
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    # Published items never change once published, so proxies may keep them longer.
    cache_max_age: int = Field(default=60, ge=0)

    @model_validator(mode="after")
    def _default_page_fits(self) -> InformationSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size cannot exceed max_page_size")
        return self
