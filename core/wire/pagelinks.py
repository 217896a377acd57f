"""A page of a list as JSON, with ``Link`` headers (RFC 8288) to itself and to the next page.

Every list route answers ``{"items": [...], "next_cursor": ...}``; the same links in the
header let a client (or a generic tool) walk the pages without knowing the body's shape. The
targets are relative references (resolved against the request's URI), so they stay right
behind a proxy that rewrites the host or the scheme.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.wire.bodies import json_response

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aiohttp import web


def page_links(request: web.Request, next_cursor: str | None) -> str:
    """The ``Link`` value of a page: ``rel="self"``, and ``rel="next"`` when there is one."""
    links = [f'<{request.rel_url}>; rel="self"']
    if next_cursor is not None:
        links.append(f'<{request.rel_url.update_query(cursor=next_cursor)}>; rel="next"')
    return ", ".join(links)


def page_response(
    request: web.Request,
    items: Sequence[Any],
    next_cursor: str | None,
    *,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The JSON page with its ``Link`` header."""
    return json_response(
        {"items": items, "next_cursor": next_cursor},
        headers={**(headers or {}), "Link": page_links(request, next_cursor)},
    )
