"""schemathesis hooks that supply what only the server can: its cursors, fresh idempotency
keys, and the view a role must name. Loaded by ``tests/test_fuzzing.py`` through
``SCHEMATHESIS_HOOKS``; configured by the environment it sets.

Each hook leaves alone a parameter that the case deliberately made invalid (a negative case's
mutation), so that the server is still checked to refuse it.

* ``{id}`` in a path: most generated ids name nothing, so the route's logic behind its 404
  would go untested; a generated id is exchanged, by its hash, for one of the demo data's ids
  of that resource, or kept for a share of the cases, so that the 404 is tested too.
* ``cursor``: a cursor is opaque and valid only for the query that issued it (the document
  says so, and that any other value is 400). A generated one is replaced by the ``next_cursor``
  the server gives for the same query, or dropped when that query has no next page.
* ``Idempotency-Key``: a key reused for a different request is refused (422, as the
  Idempotency-Key draft says); each generated case gets a fresh key.
* Rules between fields, or between a request and the data stored, that JSON Schema cannot
  state (each is refused with a 422 naming the field): ``GET /api/v1/information-requests``
  needs ``queue=agency`` (agencies) or ``mine=true`` (citizens), and gets the role's own; a
  consultation closes after it opens (with its minimum discussion time) and numbers its
  sections 1 to n when it numbers them; a comment is on a section of its draft and replies to
  a comment of it; a report answers comments of its consultation, each once; an item's
  translations are each in another language than its own, once; a rejection cites a ground
  in force that day (the document lists the grounds not yet in force); an extension moves the
  request's last day later (the day after its current one, within the statutory maximum).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import negated_parameters

from plugins.petitions.reasons import RejectionReason, in_force
from tests.support.services import SHIPPED_CONFIG

BASE_URL = os.environ.get("QATYSU_FUZZ_BASE_URL", "")
TOKEN = os.environ.get("QATYSU_FUZZ_TOKEN", "")
ROLE = os.environ.get("QATYSU_FUZZ_ROLE", "anonymous")
ROLE_VIEWS: dict[str, dict[str, Any]] = {
    "citizen": {"mine": True},
    "agency": {"queue": "agency"},
}
INFORMATION_REQUESTS = "/api/v1/information-requests"
# The demo data's ids (``qatysu serve --demo``), by the path their resource lives under.
DEMO_IDS: dict[str, tuple[str, ...]] = {
    "/api/v1/petitions/{id}": (
        "demo-moderation",
        "demo-restricted",
        "demo-public",
        "demo-awaiting",
        "demo-answered",
    ),
    "/api/v1/consultations/{id}": ("demo-consultation",),
    "/api/v1/information/{id}": ("demo-info-kk", "demo-info-ru", "demo-info-en"),
    "/api/v1/information-requests/{id}": (
        "demo-request-registered",
        "demo-request-in-progress",
        "demo-request-answered",
        "demo-request-refused",
    ),
}
# The zone of the shipped calendar, which the fuzzed server runs.
SHIPPED_ZONE = ZoneInfo(SHIPPED_CONFIG["kazakhstan"]["calendar"]["timezone"])
# Longer than any configured minimum discussion time.
DISCUSSION = dt.timedelta(days=365)


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    negated = {name.lower() for name, _ in negated_parameters(case._meta)}
    route = (case.operation.method.upper(), case.operation.path)
    if (
        route == ("GET", INFORMATION_REQUESTS)
        and ROLE in ROLE_VIEWS
        and not negated & {"queue", "mine"}
    ):
        query = dict(case.query or {})
        query.pop("queue", None)
        query.pop("mine", None)
        case.query = {**query, **ROLE_VIEWS[ROLE]}
    if case.path_parameters and "id" in case.path_parameters and "id" not in negated:
        case.path_parameters = {
            **case.path_parameters,
            "id": demo_id(case.operation.path, str(case.path_parameters["id"])),
        }
    body_negated = case._meta is not None and case._meta.is_negative_at(ParameterLocation.BODY)
    if isinstance(case.body, dict) and not body_negated:
        case.body = _cross_field_rules(route, case.formatted_path, dict(case.body))
    if case.query and "cursor" in case.query and "cursor" not in negated:
        query = dict(case.query)
        cursor = issued_cursor(case.formatted_path, _wire(query))
        if cursor is None:
            query.pop("cursor")
        else:
            query["cursor"] = cursor
        case.query = query
    if case.headers and "idempotency-key" not in negated:
        for name in list(case.headers):
            if name.lower() == "idempotency-key":
                case.headers[name] = uuid.uuid4().hex
    return case


def demo_id(path: str, generated: str) -> str:
    """A demo id of the resource ``path`` names, chosen by ``generated``'s hash, or itself."""
    for prefix, ids in DEMO_IDS.items():
        if path.startswith(prefix):
            choice = zlib.crc32(generated.encode("utf-8", "surrogatepass")) % (len(ids) + 2)
            return ids[choice] if choice < len(ids) else generated
    return generated


def _cross_field_rules(route: tuple[str, str], target: str, body: dict[str, Any]) -> dict[str, Any]:
    method, path = route
    if route == ("POST", "/api/v1/consultations") and {"opens_at", "closes_at"} <= set(body):
        opens = dt.datetime.now(dt.UTC)
        body["opens_at"] = opens.isoformat()
        body["closes_at"] = (opens + DISCUSSION).isoformat()
        sections = body.get("sections")
        if isinstance(sections, list) and any(
            isinstance(section, dict) and section.get("number") is not None for section in sections
        ):
            for number, section in enumerate(sections, start=1):
                if isinstance(section, dict):
                    section["number"] = number
    if method == "POST" and path.endswith("/report") and isinstance(body.get("answers"), list):
        # Each answer names a comment of this consultation, once.
        comments = comment_ids(target.removesuffix("/report"))
        answers = [a for a in body["answers"] if isinstance(a, dict)][: len(comments)]
        body["answers"] = [
            {**answer, "comment_id": comment}
            for answer, comment in zip(answers, comments, strict=False)
        ]
    if route == ("POST", "/api/v1/consultations/{id}/comments"):
        # A comment is on a section of this draft, and replies to a comment of it.
        consultation = target.removesuffix("/comments")
        sections = section_count(consultation)
        if isinstance(body.get("section"), int | float) and sections:
            body["section"] = 1 + (int(body["section"]) - 1) % sections
        if body.get("parent_id") is not None:
            comments = comment_ids(consultation)
            body["parent_id"] = comments[0] if comments else None
    grounds = {reason.value for reason in RejectionReason}
    moderation = route == ("POST", "/api/v1/petitions/{id}/moderation")
    if moderation and body.get("reason_code") in grounds:
        today = dt.datetime.now(SHIPPED_ZONE).date()
        if not in_force(RejectionReason(body["reason_code"]), today):
            body["reason_code"] = RejectionReason.FORM_REQUIREMENTS.value
    if route == ("POST", "/api/v1/information-requests/{id}/extension") and "until" in body:
        due = request_due_date(target.removesuffix("/extension"))
        if due is not None:
            body["until"] = (due + dt.timedelta(days=1)).isoformat()
    if route == ("POST", "/api/v1/information") and isinstance(body.get("translations"), list):
        kept = {
            t.get("language"): t
            for t in body["translations"]
            if isinstance(t, dict) and t.get("language") != body.get("language")
        }
        body["translations"] = list(kept.values())
    return body


def _wire(query: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The query as sent, without the cursor and with a page of one row."""
    pairs = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in query.items()
        if name not in {"cursor", "limit"} and value is not None
    }
    return tuple(sorted({**pairs, "limit": "1"}.items()))


def request_due_date(path: str) -> dt.date | None:
    """The current last day of the request at ``path`` in the authority's time zone, as the
    caller may see it; None when it may not (another agency's request) or on error."""
    request = urllib.request.Request(f"{BASE_URL}{path}")
    if TOKEN:
        request.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            due_at = json.loads(response.read()).get("due_at")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if not isinstance(due_at, str):
        return None
    # Due at the end of a day in the shipped calendar's zone: that day, whatever the UTC date.
    return dt.datetime.fromisoformat(due_at).astimezone(SHIPPED_ZONE).date()


@cache
def section_count(consultation: str) -> int:
    """How many sections the draft at ``consultation`` (its path) has; 0 on error."""
    try:
        with urllib.request.urlopen(f"{BASE_URL}{consultation}", timeout=10) as response:
            sections = json.loads(response.read()).get("sections", [])
    except (urllib.error.URLError, OSError, ValueError):
        return 0
    return len(sections) if isinstance(sections, list) else 0


@cache
def comment_ids(consultation: str) -> tuple[str, ...]:
    """The ids of the comments the public sees on ``consultation`` (its path); none on error."""
    request = urllib.request.Request(f"{BASE_URL}{consultation}/comments?limit=100")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            items = json.loads(response.read()).get("items", [])
    except (urllib.error.URLError, OSError, ValueError):
        return ()
    return tuple(str(item["id"]) for item in items if isinstance(item, dict) and "id" in item)


@cache
def issued_cursor(path: str, query: tuple[tuple[str, str], ...]) -> str | None:
    """The next_cursor the server issues for ``query`` on ``path``; None without one."""
    request = urllib.request.Request(f"{BASE_URL}{path}?{urllib.parse.urlencode(query)}")
    if TOKEN:
        request.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            link = response.headers.get("Link", "")
            body = response.read()
    except (urllib.error.URLError, OSError):
        return None
    if response.headers.get_content_type() == "application/json":
        cursor = json.loads(body).get("next_cursor")
        return cursor if isinstance(cursor, str) else None
    for part in link.split(","):
        if 'rel="next"' in part:
            target = part.split(";")[0].strip().strip("<>")
            found = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get("cursor")
            return found[0] if found else None
    return None
