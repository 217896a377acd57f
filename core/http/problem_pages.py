"""The pages that problem ``type`` URIs name: ``GET /problems/{slug}`` explains each one.

Every problem+json answer's ``type`` is a relative URI such as ``/problems/rate-limited``
(RFC 9457 section 3.1.1); resolved against the API's address, it is this page. Each page says
when the problem is sent and what a client should do about it.
``tests/core/http/test_problem_pages.py`` checks that every problem the server can send has a page.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from aiohttp import web

from core.http.docs import CACHE_CONTROL, DOCS_POLICY
from core.plugin_host.routing import Routes
from core.wire.errors import problem_type


@dataclass(frozen=True, slots=True)
class ProblemPage:
    status: str
    title: str
    when: str
    what_to_do: str


PAGES: dict[str, ProblemPage] = {
    "bad-request": ProblemPage(
        "400",
        "Bad request",
        "The request could not be read: malformed JSON (the detail gives the position), a "
        "malformed Idempotency-Key, or a cursor this server did not issue.",
        "Fix the request. Cursors are opaque: pass back next_cursor (or follow the Link "
        'rel="next") exactly as received, with the same filters.',
    ),
    "unauthorized": ProblemPage(
        "401",
        "Unauthorized",
        "The route needs a bearer token and none was sent, or the token sent is malformed, "
        "expired, not yet valid, wrongly signed, or of a type this server does not accept. A "
        "bad token is refused on every route, including public ones.",
        "Get a fresh token from the identity provider and send it as "
        "'Authorization: Bearer <token>'; for a public route, send no token at all.",
    ),
    "forbidden": ProblemPage(
        "403",
        "Forbidden",
        "The token is valid but its role may not do this (the route's x-qatysu-roles in "
        "/openapi.json lists who may), or the resource belongs to another agency, or the "
        "query asks for what only moderators see.",
        "Use a token of a role the route allows; do not retry with the same token.",
    ),
    "unregistered-agency": ProblemPage(
        "403",
        "Unregistered agency",
        "An agency token names an agency code that is not in the register (GET "
        "/api/v1/agencies lists the codes).",
        "Ask the identity provider for a token whose agency claim is a registered code.",
    ),
    "not-found": ProblemPage(
        "404",
        "Not found",
        "No such route, or no such resource, or one the caller may not know exists (another "
        "citizen's information request, a petition still in moderation).",
        "Check the identifier; a resource you may not see answers exactly like a missing one.",
    ),
    "method-not-allowed": ProblemPage(
        "405",
        "Method not allowed",
        "The path exists but not with this method; the Allow header lists the methods it has.",
        "Use one of the methods in Allow.",
    ),
    "header-timeout": ProblemPage(
        "408",
        "Request timeout",
        "The request's head did not arrive within the server's header timeout.",
        "Send the whole head promptly; reconnect and retry.",
    ),
    "request-timeout": ProblemPage(
        "408",
        "Request timeout",
        "The request's body did not arrive within its deadline; the connection is closed.",
        "Send the body promptly; reconnect and retry (a create with the same Idempotency-Key).",
    ),
    "conflict": ProblemPage(
        "409",
        "Conflict",
        "The resource's state forbids the action: a petition that is not open for signing, "
        "not in moderation, or not awaiting an answer; a consultation that is closed. The "
        "body names the current status.",
        "Read the resource again; the action is not possible in its current state.",
    ),
    "idempotency-in-progress": ProblemPage(
        "409",
        "Request in progress",
        "A request with the same Idempotency-Key is still being handled.",
        "Wait for Retry-After seconds, then retry with the same key: the retry gets the "
        "first request's answer.",
    ),
    "payload-too-large": ProblemPage(
        "413",
        "Payload too large",
        "The body is larger than the server accepts (server.max_body_bytes).",
        "Send a shorter body; every field's maximum length is in /openapi.json.",
    ),
    "unsupported-media-type": ProblemPage(
        "415",
        "Unsupported media type",
        "A body was sent that is not application/json.",
        "Send the body as JSON with 'Content-Type: application/json'.",
    ),
    "validation": ProblemPage(
        "422",
        "Unprocessable content",
        "The request is well-formed but breaks a rule: the errors list names each field and "
        "what is wrong with it (a length, a range, a code that is not registered, a character "
        "no database stores). An Idempotency-Key reused for a different request is refused "
        "the same way.",
        "Fix each field the errors list names; the rules are in /openapi.json.",
    ),
    "rate-limited": ProblemPage(
        "429",
        "Too many requests",
        "The client is over its rate for this kind of request: a citizen by their token, "
        "anyone else by their address. RateLimit-Policy gives the budget, RateLimit what is "
        "left.",
        "Wait for Retry-After seconds before the next request of this kind.",
    ),
    "address-connections": ProblemPage(
        "429",
        "Too many requests",
        "The client's address has as many open connections as the server accepts from one address.",
        "Close a connection (reuse one with keep-alive) and retry after Retry-After seconds.",
    ),
    "internal": ProblemPage(
        "500",
        "Internal server error",
        "The server failed to handle the request. It is a bug, and it has been logged with "
        "the request_id the body gives.",
        "Retry later; if it persists, report the request_id to the portal's operators.",
    ),
    "unavailable": ProblemPage(
        "503",
        "Service unavailable",
        "The server shed the request to keep answering under load, is draining before a "
        "restart, or its storage is not answering or is saturated. Nothing was written.",
        "Retry after Retry-After seconds; a create may be retried with the same Idempotency-Key.",
    ),
    "overloaded": ProblemPage(
        "503",
        "Service unavailable",
        "The server refused the request before reading it, to keep answering the requests "
        "it has already taken. Nothing was written.",
        "Retry after Retry-After seconds.",
    ),
    "connections": ProblemPage(
        "503",
        "Service unavailable",
        "The server has as many open connections as it accepts.",
        "Close idle connections and retry after Retry-After seconds.",
    ),
    "outcome-unknown": ProblemPage(
        "503",
        "Outcome unknown",
        "Storage did not confirm whether the write was committed: it may or may not have "
        "been saved.",
        "Retry with the same Idempotency-Key: the retry answers with the first outcome, and "
        "never creates twice.",
    ),
    "http-error": ProblemPage(
        "4xx",
        "HTTP error",
        "An HTTP error with no more specific type; the status and detail say which.",
        "Read the status and detail.",
    ),
}


def _render(slug: str, page: ProblemPage) -> str:
    escape = html.escape
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(page.title)} ({escape(page.status)}) - Qatysu API</title></head>\n"
        f"<body><main><h1>{escape(page.title)}</h1>\n"
        f"<p>Problem type <code>{escape(problem_type(slug))}</code>, HTTP status "
        f"{escape(page.status)}.</p>\n"
        f"<h2>When it is sent</h2><p>{escape(page.when)}</p>\n"
        f"<h2>What to do</h2><p>{escape(page.what_to_do)}</p>\n"
        '<p><a href="/problems">Every problem type</a> · <a href="/docs">API documentation</a>'
        "</p></main></body></html>\n"
    )


def _render_index() -> str:
    items = "".join(
        f'<li><a href="{html.escape(problem_type(slug))}">{html.escape(page.title)}</a> '
        f"({html.escape(page.status)}): <code>{html.escape(problem_type(slug))}</code></li>\n"
        for slug, page in PAGES.items()
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Problem types - Qatysu API</title></head>\n"
        "<body><main><h1>Problem types</h1>\n<p>Every error is "
        "<code>application/problem+json</code> (RFC 9457); its <code>type</code> is one of "
        f'these.</p>\n<ul>\n{items}</ul>\n<p><a href="/docs">API documentation</a></p>'
        "</main></body></html>\n"
    )


_RENDERED = {slug: _render(slug, page) for slug, page in PAGES.items()}
_INDEX = _render_index()
HTML = "text/html"

routes = Routes(tags=("documentation",))


@routes.get(
    "/problems",
    name="docs.problems",
    summary="Every problem type, with a link to its page",
    policy=DOCS_POLICY,
    responses={200: "An HTML page listing every problem type"},
)
async def problem_index(request: web.Request) -> web.Response:
    return web.Response(text=_INDEX, content_type=HTML, headers={"Cache-Control": CACHE_CONTROL})


@routes.get(
    "/problems/{slug}",
    name="docs.problem",
    summary="What a problem type means and what to do about it",
    policy=DOCS_POLICY,
    responses={200: "An HTML page that explains the problem type", 404: "No such problem type"},
)
async def problem_page(request: web.Request) -> web.Response:
    page = _RENDERED.get(request.match_info["slug"])
    if page is None:
        # The same answer as an unknown address, which it is.
        raise web.HTTPNotFound()
    return web.Response(text=page, content_type=HTML, headers={"Cache-Control": CACHE_CONTROL})
