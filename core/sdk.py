"""The plugin API: everything a channel, identity provider or moderation filter may use.

A plugin imports from this module and from nothing else in ``core``. The rest of ``core`` is
private to it and may change in any release; what is named here changes only with a note in
CHANGELOG.md, and a name is removed only after a release that deprecates it. The contract is
checked by import-linter (``[tool.importlinter]`` in ``pyproject.toml``).
"""

from __future__ import annotations

from core.admission.inflight import CappedCounts
from core.background import stop
from core.clock import as_utc, iso, utcnow
from core.http.cache import RenderedBody, cache_key, cached_document, cached_response, render
from core.http.fastlane import StreamConnection, StreamOpener
from core.http.keys import CACHE
from core.http.openapi import REGISTERED_AGENCY
from core.http.streams import (
    count_refusal,
    lasts,
    open_streams_in_lane,
    overloaded,
    requester_address,
)
from core.identity.identities import Identity, Role
from core.identity.jurisdiction import (
    Addressee,
    Jurisdiction,
    Region,
    Term,
    WorkingDays,
    add_months,
    end_of_day,
    first_working_day,
)
from core.identity.keys import JURISDICTION, VERIFIER
from core.identity.tokens import TokenVerifier
from core.observability.keys import METRICS
from core.plugin_host.channels import Channel
from core.plugin_host.events import Event, emit_event
from core.plugin_host.fanout import committed_at
from core.plugin_host.hookspecs import hookimpl
from core.plugin_host.idempotency import already_stored, resource_id
from core.plugin_host.keys import EVENTS, FANOUT, PLUGINS
from core.plugin_host.moderation import ModerationResult, TextSubmission, Verdict, moderate_texts
from core.plugin_host.routing import (
    Document,
    QueryRoles,
    Responses,
    RoutePolicy,
    RouteRegistry,
    Routes,
    critical,
    normal,
    sheddable,
    streaming,
)
from core.plugin_host.transitions import not_found_or_conflict, transition
from core.settings import Names, Settings, SettingsError, validate_section
from core.storage.keys import DATABASE, WRITER
from core.storage.migrations import Migration, MigrationSet, create_tables
from core.storage.writer import BatchKind
from core.wire.bodies import Body, json_response
from core.wire.bounds import INT4_MAX, Moment
from core.wire.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
    field_error,
    invalid,
)
from core.wire.i18n import Message
from core.wire.pagelinks import page_links, page_response
from core.wire.paging import (
    KEYSET_CURSOR,
    OFFSET_CURSOR,
    CursorCount,
    CursorId,
    CursorKey,
    PageCursor,
    PageLimit,
    decode_cursor,
    decode_keyset,
    decode_offset,
    encode_cursor,
    keyset_cursor,
    offset_cursor,
    page_size,
)

__all__ = [
    "CACHE",
    "DATABASE",
    "EVENTS",
    "FANOUT",
    "INT4_MAX",
    "JURISDICTION",
    "KEYSET_CURSOR",
    "METRICS",
    "OFFSET_CURSOR",
    "PLUGINS",
    "REGISTERED_AGENCY",
    "VERIFIER",
    "WRITER",
    "Addressee",
    "BadRequest",
    "BatchKind",
    "Body",
    "CappedCounts",
    "Channel",
    "Conflict",
    "CursorCount",
    "CursorId",
    "CursorKey",
    "Document",
    "Event",
    "Forbidden",
    "Identity",
    "Jurisdiction",
    "Message",
    "Migration",
    "MigrationSet",
    "ModerationResult",
    "Moment",
    "Names",
    "NotFound",
    "PageCursor",
    "PageLimit",
    "Problem",
    "QueryRoles",
    "Region",
    "RenderedBody",
    "Responses",
    "Role",
    "RoutePolicy",
    "RouteRegistry",
    "Routes",
    "ServiceUnavailable",
    "Settings",
    "SettingsError",
    "StreamConnection",
    "StreamOpener",
    "Term",
    "TextSubmission",
    "TokenVerifier",
    "TooManyRequests",
    "Unprocessable",
    "Verdict",
    "WorkingDays",
    "add_months",
    "already_stored",
    "as_utc",
    "cache_key",
    "cached_document",
    "cached_response",
    "committed_at",
    "count_refusal",
    "create_tables",
    "critical",
    "decode_cursor",
    "decode_keyset",
    "decode_offset",
    "emit_event",
    "encode_cursor",
    "end_of_day",
    "field_error",
    "first_working_day",
    "hookimpl",
    "invalid",
    "iso",
    "json_response",
    "keyset_cursor",
    "lasts",
    "moderate_texts",
    "normal",
    "not_found_or_conflict",
    "offset_cursor",
    "open_streams_in_lane",
    "overloaded",
    "page_links",
    "page_response",
    "page_size",
    "render",
    "requester_address",
    "resource_id",
    "sheddable",
    "stop",
    "streaming",
    "transition",
    "utcnow",
    "validate_section",
]
