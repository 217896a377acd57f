"""The information channel's settings: Kazakhstan's defaults, every figure in config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.jurisdiction import Term

SECTION = "information"


class InformationSettings(BaseModel):
    """The statutory answer term and the channel's page sizes and cache lifetime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Law of the Republic of Kazakhstan "On access to information" No. 401-V of 16 Nov 2015,
    # article 11; config/default.toml says what was checked.
    answer_term: Term = Term(
        days=15, source="built-in default; config/default.toml gives the statutory source"
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
