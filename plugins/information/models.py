"""Request and response bodies of the information channel (they also document /openapi.json)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from core.sdk import REGISTERED_AGENCY, Body, PageCursor, PageLimit
from plugins.information.lifecycle import RequestStatus

Language = Literal["kk", "ru", "en"]


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- published items -------------------------------------------------------------------------


class Translation(Body):
    """The same item in another language."""

    language: Language
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=50_000)


class ItemPublish(Body):
    """An item an agency publishes; the agency is the one named in its token."""

    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=50_000)
    category: str = Field(min_length=1, max_length=64, description="free text, e.g. 'budget'")
    language: Language = Field(description="the language of title and body")
    translations: list[Translation] = Field(
        default_factory=list,
        description="the item in other languages: each at most once, none the main language",
    )

    @field_validator("translations")
    @classmethod
    def _each_language_once(
        cls, value: list[Translation], info: ValidationInfo
    ) -> list[Translation]:
        languages = [translation.language for translation in value]
        if len(set(languages)) != len(languages):
            raise ValueError("each language may be translated once")
        main = info.data.get("language")
        if main in languages:
            raise ValueError(f"a translation cannot be in the main language {main!r}")
        return value


class ItemListQuery(Query):
    """Filters, full-text search and page of the published items."""

    agency: str | None = Field(
        default=None, min_length=1, max_length=64, description="only the agency with this code"
    )
    category: str | None = Field(
        default=None, min_length=1, max_length=64, description="only items in this category"
    )
    language: Language | None = Field(
        default=None, description="items in this language, as the main one or a translation"
    )
    q: str | None = Field(
        default=None,
        max_length=200,
        description="words to find in titles, bodies and translations; best match first",
    )
    limit: PageLimit = None
    cursor: PageCursor = None


class Item(BaseModel):
    """A published item."""

    id: str
    agency: str
    category: str
    language: Language
    title: str
    body: str
    translations: list[Translation]
    published_at: str


class ItemPage(BaseModel):
    """A page of items, newest first (best match first with ``q``); pass ``next_cursor`` back
    as ``cursor`` for the next one."""

    items: list[Item]
    next_cursor: str | None


# --- access-to-information requests ----------------------------------------------------------


class RequestFile(Body):
    """A citizen's request for information held by an agency."""

    agency: str = Field(
        min_length=1,
        max_length=64,
        description="the code of the agency asked, from GET /api/v1/agencies",
        json_schema_extra=REGISTERED_AGENCY,
    )
    subject: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=10_000)
    language: Language = Field(description="the language of subject and text")
    public: bool = Field(
        default=False,
        # JSON true or false only, as documented: 0 and 1 are not booleans.
        strict=True,
        description="publish the request and its answer (without the requester) as open data",
    )


class RequestAnswer(Body):
    """The agency's answer."""

    text: str = Field(min_length=1, max_length=20_000)
    language: Language


class RequestRefusal(Body):
    """The agency's refusal; the reason is required."""

    reason: str = Field(min_length=1, max_length=5_000)
    language: Language


class RequestExtension(Body):
    """The agency's extension of the answer term: the new last day, and why."""

    until: dt.date = Field(
        description="the term's new last day, in the authority's time zone: after the current "
        "one, and at most the statutory maximum from filing (information.extension)"
    )
    reason: str = Field(min_length=1, max_length=5_000)
    language: Language


class RequestListQuery(Query):
    """The agency's queue (``queue=agency``) or the citizen's own requests (``mine=true``)."""

    queue: Literal["agency"] | None = Field(
        default=None, description="agency tokens: the requests addressed to the agency, by due date"
    )
    mine: bool | None = Field(
        default=None, description="citizen tokens: the requests the caller filed, newest first"
    )
    status: RequestStatus | None = Field(default=None, description="only requests in this status")
    overdue: bool | None = Field(
        default=None, description="only requests still open past their due date (or only others)"
    )
    limit: PageLimit = None
    cursor: PageCursor = None


class PublicRequestQuery(Query):
    """Filters and page of the requests their requesters made public."""

    agency: str | None = Field(
        default=None, min_length=1, max_length=64, description="only requests to this agency"
    )
    status: RequestStatus | None = Field(default=None, description="only requests in this status")
    limit: PageLimit = None
    cursor: PageCursor = None


class Answer(BaseModel):
    text: str
    language: Language
    answered_at: str


class Refusal(BaseModel):
    reason: str
    language: Language
    refused_at: str


class Extension(BaseModel):
    reason: str
    language: Language
    extended_at: str


class PublicInformationRequest(BaseModel):
    """A request as the public sees it: nothing about who filed it."""

    id: str
    agency: str
    subject: str
    text: str
    language: Language
    status: RequestStatus
    overdue: bool = Field(description="still open past due_at; derived on every read")
    filed_at: str
    due_at: str
    started_at: str | None
    answer: Answer | None
    refusal: Refusal | None
    extension: Extension | None = Field(description="the agency's extension of the term, if any")


class InformationRequest(PublicInformationRequest):
    """A request as its requester and the agency asked see it."""

    public: bool
    requester_name: str | None


class RequestPage(BaseModel):
    """A page of requests; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[InformationRequest]
    next_cursor: str | None


class PublicRequestPage(BaseModel):
    """A page of public requests, newest first."""

    items: list[PublicInformationRequest]
    next_cursor: str | None
