"""Problem details (RFC 9457) for every error the server sends.

The exception tree, all rendered as ``application/problem+json`` by the error middleware::

    Problem                      any error with an HTTP status
    ├── BadRequest          400  malformed input (JSON syntax, with the parse position)
    ├── Unauthorized        401  missing, malformed, expired or wrongly signed token
    ├── Forbidden           403  a valid identity without the role the route needs
    ├── NotFound            404  no such resource, or one the caller may not know exists
    ├── MethodNotAllowed    405
    ├── RequestTimeout      408  the body did not arrive within its deadline; closes the connection
    ├── Conflict            409  the resource's state forbids the action
    ├── PayloadTooLarge     413
    ├── UnsupportedMediaType 415
    ├── Unprocessable       422  well-formed input that breaks a rule; ``errors`` per field
    ├── TooManyRequests     429  a client over its rate; carries Retry-After and RateLimit headers
    └── ServiceUnavailable  503  shed, draining or a storage queue that is full; Retry-After
        └── OutcomeUnknown  503  storage did not confirm a commit: retry with the same
                                 Idempotency-Key, which answers with the first outcome

Anything else that escapes a handler is a bug: the client gets a bare 500 problem that says
nothing internal, and the log gets the traceback with the request id.

A detail is an English template with named fields, ``Conflict("the petition is {status}",
params={"status": ...})``; ``title`` and ``detail`` are rendered in the language the request
asks for (``core.wire.i18n``), and ``detail`` itself holds the English text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson
from aiohttp import web

from core.wire.i18n import DEFAULT_LANGUAGE, Message, render, translate

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_type(slug: str) -> str:
    """A problem's ``type``: a relative URI whose page explains it (``core.http.problem_pages``)."""
    return f"/problems/{slug}"


class Problem(Exception):
    """An error with an HTTP status, rendered as problem+json."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal server error"
    slug: ClassVar[str] = "internal"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        self.template = detail
        self.params = dict(params or {})
        self.detail = render(detail, self.params, DEFAULT_LANGUAGE) if params else detail
        super().__init__(self.detail)
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self, language: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": problem_type(self.slug),
            "title": translate(self.title, language),
            "status": self.status,
            "detail": render(self.template, self.params, language),
        }
        if self.errors is not None:
            body["errors"] = [
                {**error, "message": _message(error["message"], language)} for error in self.errors
            ]
        body.update(self.extra)
        return body

    def response(self, language: str = DEFAULT_LANGUAGE) -> web.Response:
        response = problem_response(self.status, self.body(language), self.headers)
        response.headers["Content-Language"] = language
        return response


class BadRequest(Problem):
    status, title, slug = 400, "Bad request", "bad-request"


class Unauthorized(Problem):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str, *, params: Mapping[str, object] | None = None) -> None:
        super().__init__(
            detail, headers={"WWW-Authenticate": 'Bearer realm="qatysu"'}, params=params
        )


class Forbidden(Problem):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(Problem):
    status, title, slug = 404, "Not found", "not-found"


class MethodNotAllowed(Problem):
    status, title, slug = 405, "Method not allowed", "method-not-allowed"


class RequestTimeout(Problem):
    status, title, slug = 408, "Request timeout", "request-timeout"

    def response(self, language: str = DEFAULT_LANGUAGE) -> web.Response:
        response = super().response(language)
        # The rest of the body may still be on its way: the connection cannot carry another
        # request, so it closes once this answer is out.
        response.force_close()
        return response


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(Problem):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(Problem):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


class Unprocessable(Problem):
    status, title, slug = 422, "Unprocessable content", "validation"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]],
        params: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(detail, errors=errors, params=params)


class TooManyRequests(Problem):
    status, title, slug = 429, "Too many requests", "rate-limited"


class ServiceUnavailable(Problem):
    status, title, slug = 503, "Service unavailable", "unavailable"

    def __init__(
        self,
        detail: str,
        *,
        retry_after: float = 1.0,
        reason: str = "",
        params: Mapping[str, object] | None = None,
    ) -> None:
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
        super().__init__(detail, headers=headers, params=params)
        self.reason = reason


class OutcomeUnknown(ServiceUnavailable):
    """The write may or may not have been saved; only a retry with its key can tell."""

    title, slug = "Outcome unknown", "outcome-unknown"

    def __init__(self, detail: str, *, retry_after: float = 1.0) -> None:
        super().__init__(detail, retry_after=retry_after, reason="outcome_unknown")


def field_error(field: str, message: str, **params: object) -> dict[str, str]:
    """One field's error; ``message`` is a template filled with ``params``, then translated."""
    return {"field": field, "message": Message(message, **params)}


def invalid(field: str, message: str, **params: object) -> Unprocessable:
    """A 422 about one field, for rules checked after the model has validated."""
    return Unprocessable(
        "{field}: {message}",
        errors=[field_error(field, message, **params)],
        params={"field": field, "message": Message(message, **params)},
    )


def _message(message: str, language: str) -> str:
    if isinstance(message, Message):
        return render(message.template, message.params, language)
    return translate(message, language)


def problem_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


_STATUS_TO_PROBLEM: dict[int, type[Problem]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        TooManyRequests,
        ServiceUnavailable,
    )
}


def from_http_exception(exc: web.HTTPException, language: str = DEFAULT_LANGUAGE) -> web.Response:
    """Re-render an aiohttp HTTP error (router 404/405, body too large...) as problem+json."""
    cls = _STATUS_TO_PROBLEM.get(exc.status)
    title = cls.title if cls is not None else exc.reason
    slug = cls.slug if cls is not None else "http-error"
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
    headers["Content-Language"] = language
    body = {
        "type": problem_type(slug),
        "title": translate(title, language),
        "status": exc.status,
        "detail": translate(detail, language),
    }
    return problem_response(exc.status, body, headers)


def internal_error_response(request_id: str, language: str = DEFAULT_LANGUAGE) -> web.Response:
    return problem_response(
        500,
        {
            "type": problem_type("internal"),
            "title": translate(Problem.title, language),
            "status": 500,
            "detail": translate(
                "The server failed to handle this request; it has been logged.", language
            ),
            "request_id": request_id,
        },
        {"Content-Language": language},
    )
