"""Request and response bodies of the petition channel (they also document /openapi.json)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.sdk import REGISTERED_AGENCY, Body, PageCursor, PageLimit
from plugins.petitions.lifecycle import Status
from plugins.petitions.reasons import RejectionReason, described


class PetitionCreate(Body):
    """A new petition, filed by a citizen."""

    title: str = Field(min_length=10, max_length=200)
    text: str = Field(min_length=50, max_length=10_000)
    addressee: str = Field(
        min_length=1,
        max_length=64,
        description="the code of the agency that must answer, from GET /api/v1/agencies",
        json_schema_extra=REGISTERED_AGENCY,
    )


class ModerationDecision(Body):
    """A moderator's decision on a petition in moderation."""

    # A rejection cites its ground and an approval cites none; the document says so too.
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "oneOf": [
                {
                    "properties": {
                        "decision": {"const": "approve"},
                        "reason_code": {"type": "null"},
                    }
                },
                {
                    "properties": {
                        "decision": {"const": "reject"},
                        "reason_code": {"type": "string"},
                    },
                    "required": ["reason_code"],
                },
            ]
        },
    )

    decision: Literal["approve", "reject"]
    reason_code: RejectionReason | None = Field(
        default=None,
        description="required on rejection: the statutory ground. " + described(),
    )
    reason: str | None = Field(
        default=None, max_length=2000, description="the moderator's explanation, optional"
    )


class PetitionAnswer(Body):
    """The addressee's answer to a petition that reached its threshold."""

    text: str = Field(min_length=1, max_length=20_000)


class PetitionListQuery(Body):
    """Filters, order and page of the petition list."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = Field(
        default=None,
        description="one status; without it, every status the public sees (moderators may ask "
        "for the others)",
    )
    addressee: str | None = Field(
        default=None, max_length=64, description="only petitions to the agency with this code"
    )
    sort: Literal["created", "signatures"] = Field(
        default="created", description="newest first, or most signed first"
    )
    q: str | None = Field(
        default=None,
        max_length=200,
        description="words to find in titles and texts, every one of them; best match first, "
        "then by sort",
    )
    limit: PageLimit = None
    cursor: PageCursor = None


class PageQuery(Body):
    """A page of a list."""

    model_config = ConfigDict(extra="forbid")

    limit: PageLimit = None
    cursor: PageCursor = None


class Response(BaseModel):
    """The addressee's answer."""

    text: str
    agency: str | None
    responded_at: str


class Labels(BaseModel):
    """A label in Kazakh, Russian and English."""

    kk: str
    ru: str
    en: str


class Petition(BaseModel):
    """A petition as the public (or its author and moderators) see it."""

    id: str
    title: str
    text: str
    addressee: str
    status: Status
    author_name: str
    signature_count: int
    threshold: int
    co_signer_minimum: int
    created_at: str
    moderation_due_at: str
    moderation_overdue: bool
    moderation_reason: str | None
    moderation_reason_code: RejectionReason | None
    moderation_reason_labels: Labels | None
    moderation_flag: str | None = Field(
        description="why a moderation plugin flagged the text for a moderator's attention"
    )
    restricted_until: str | None
    collection_ends_at: str | None
    threshold_reached_at: str | None
    response_due_at: str | None
    response_overdue: bool
    response: Response | None


class PetitionPage(BaseModel):
    """A page of petitions; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[Petition]
    next_cursor: str | None


class SignatureReceipt(BaseModel):
    """The result of signing: the count includes this signature once it is committed."""

    petition_id: str
    signature_count: int
    status: Status
    already_signed: bool


class Signer(BaseModel):
    """A signer as the public sees them: first name and initial only."""

    name: str
    signed_at: str


class RegionCount(BaseModel):
    """Signatures from one region of the register."""

    code: str
    names: Labels | None
    signatures: int


class RegionCounts(BaseModel):
    """Where signatures come from; regions under ``minimum`` are merged into ``other``."""

    petition_id: str
    minimum: int
    regions: list[RegionCount]
    other: int = Field(description="regions under the minimum, and signatures with no region")
    total: int


class SignerPage(BaseModel):
    """A page of signers."""

    items: list[Signer]
    next_cursor: str | None
