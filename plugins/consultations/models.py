"""Request and response bodies of the consultation channel (they also document /openapi.json)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.sdk import INT4_MAX, Body, Moment, PageCursor, PageLimit
from plugins.consultations.discussion import DraftKind
from plugins.consultations.lifecycle import Position, Status


class SectionDraft(Body):
    """One numbered section of the draft act."""

    number: int | None = Field(
        default=None,
        ge=1,
        le=INT4_MAX,
        description="1..n, each once; omit it on every section to number them in order",
    )
    heading: str | None = Field(default=None, min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=50_000)


class ConsultationCreate(Body):
    """A draft act opened for public discussion by the agency that drafted it."""

    title: str = Field(min_length=5, max_length=300)
    summary: str = Field(min_length=1, max_length=5_000)
    sections: list[SectionDraft] = Field(min_length=1, max_length=500)
    kind: DraftKind = Field(
        default=DraftKind.REGULATORY,
        description="public_service: a draft by-law on public services, discussed for at least "
        "[consultations] public_service_discussion (10 working days); regulatory: any other "
        "draft, at least min_discussion_days calendar days",
    )
    opens_at: Moment = Field(description="ISO 8601 with a time zone")
    closes_at: Moment = Field(
        description="after opens_at, leaving at least the minimum discussion of the draft's "
        "kind from the later of opens_at and now",
    )


class CommentCreate(Body):
    """A citizen's comment on the draft, or a reply to another comment."""

    text: str = Field(min_length=1, max_length=5_000)
    section: int | None = Field(
        default=None,
        ge=1,
        le=INT4_MAX,
        description="the section number it is about; a reply takes its parent's section",
    )
    parent_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="the comment this replies to, in the same consultation",
    )


class VoteCast(Body):
    """A citizen's position on the draft; voting again changes it."""

    position: Position


class CommentHiding(Body):
    """Why a moderator hides a comment from the public."""

    reason: str = Field(min_length=1, max_length=2_000)


class ReportAnswerDraft(Body):
    """The agency's answer to one comment."""

    comment_id: str = Field(min_length=1, max_length=32)
    answer: str = Field(min_length=1, max_length=5_000)


class ReportCreate(Body):
    """The summary of the discussion; publishing it closes the consultation."""

    summary: str = Field(min_length=1, max_length=20_000)
    answers: list[ReportAnswerDraft] = Field(default_factory=list, max_length=1_000)


class ConsultationListQuery(Body):
    """Filters and page of the consultation list (newest first)."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = Field(default=None, description="only consultations in this status")
    agency: str | None = Field(
        default=None, max_length=64, description="only those of the agency with this code"
    )
    limit: PageLimit = None
    cursor: PageCursor = None


class CommentListQuery(Body):
    """Filters and page of a consultation's comments."""

    model_config = ConfigDict(extra="forbid")

    section: int | None = Field(
        default=None, ge=1, le=INT4_MAX, description="only comments on this numbered section"
    )
    include_hidden: bool = Field(
        default=False, description="moderators only: also list hidden comments, with why"
    )
    limit: PageLimit = None
    cursor: PageCursor = None


class Section(BaseModel):
    number: int
    heading: str | None
    text: str


class Tallies(BaseModel):
    """Votes by position; exact, counted in the transaction of each vote."""

    support: int
    oppose: int
    neutral: int


class ReportAnswer(BaseModel):
    comment_id: str
    answer: str


class Report(BaseModel):
    summary: str
    published_at: str
    answers: list[ReportAnswer]


class ConsultationSummary(BaseModel):
    """A consultation in a list: without its sections and report answers."""

    id: str
    agency: str
    title: str
    summary: str
    status: Status
    kind: DraftKind
    opens_at: str
    closes_at: str
    created_at: str
    votes: Tallies
    comment_count: int = Field(description="comments the public sees (hidden ones excluded)")
    report_published_at: str | None


class Consultation(ConsultationSummary):
    """A consultation with its draft's sections and, once published, the report."""

    sections: list[Section]
    report: Report | None


class ConsultationPage(BaseModel):
    """A page of consultations; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[ConsultationSummary]
    next_cursor: str | None


class Comment(BaseModel):
    """A comment. Lists are flat and in thread order: each thread depth-first, oldest first at
    each level, so a reply follows its parent; ``depth`` is 1 for a top-level comment.

    A reply to a comment hidden later stays listed, its ``parent_id`` naming the hidden one.
    The moderation fields appear only in a moderator's ``include_hidden`` list.
    """

    id: str
    consultation_id: str
    section: int | None
    parent_id: str | None
    depth: int
    text: str
    author_name: str
    created_at: str
    flagged: bool | None = None
    hidden_at: str | None = None
    hidden_reason: str | None = None


class CommentPage(BaseModel):
    """A page of comments; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[Comment]
    next_cursor: str | None


class VoteReceipt(BaseModel):
    """The caller's vote and the tallies once it is committed."""

    consultation_id: str
    position: Position
    changed: bool = Field(description="true when this call changed an earlier vote")
    votes: Tallies
