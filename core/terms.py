"""Statutory terms as settings: how many days, counted how, how far they may be extended, and
the law they come from.

A term in config reads ``{ days = 15, unit = "working", extension_days = 0, source = "..." }``.
Working days skip the weekend and the holiday calendar; a term in calendar days that ends on a
day off ends on the next working day instead, as terms in Kazakh law do.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Term(BaseModel):
    """A statutory term and its source (law, article, and the date of the text checked)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int = Field(ge=1)
    unit: Literal["working", "calendar"] = "working"
    extension_days: int = Field(
        default=0, ge=0, description="how far the term may be extended; 0 when it may not"
    )
    source: str = Field(min_length=1)
