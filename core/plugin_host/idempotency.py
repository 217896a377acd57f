"""``Idempotency-Key`` on creates: a retry within 24 hours gets the first answer, creates nothing.

A client that lost an answer (a timeout, a dropped connection, a 503 ``outcome-unknown``)
retries with the same key. Keys are scoped to the caller (the route, the token's role, agency
and subject: two agencies' ``official-1`` are two callers), so one client can never replay
another's answer.

A key names one request: its first use binds it to a fingerprint of the request (path, query
and body), and the same key with another request is a 422, as Stripe and the IETF
Idempotency-Key draft require. The binding is kept for ``BOUND_SECONDS``, a week, far longer
than the answer, so the 422 holds after the answer expired or was released.

Two layers make a retry safe:

* the first 2xx answer is kept for 24 hours, in the process without Redis and in Redis when it
  is configured (shared by every process and machine), and a retry gets it back, marked
  ``Idempotent-Replayed: true``; a retry while the first is still running gets 409;
* the new resource's id is derived from the scoped key and the fingerprint (``resource_id``),
  and creates skip an id that is already stored. So when the first answer was lost with the
  outcome unknown, and nothing was kept, the retry runs again and answers with the resource
  the first attempt stored instead of creating a second one; and a key reused with another
  body once even its binding is gone names another resource, never the first one, so the new
  content is created, not silently dropped.

An answer that is not 2xx is not kept: a refused create stored nothing, so running it again
is harmless; the binding stays.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import sqlalchemy as sa
from aiohttp import web

from core import keys
from core.backoff import Backoff
from core.identity import keys as identity_keys
from core.ids import new_id
from core.plugin_host import keys as plugin_host_keys
from core.wire.bodies import read_body
from core.wire.errors import BadRequest, Conflict, Unprocessable, field_error

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from sqlalchemy.ext.asyncio import AsyncConnection

    from core.identity.identities import Identity

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_SECONDS = 24 * 3600
# A retry loop gives up within hours; a week covers any of them, and Redis holds a week of
# bindings (about 200 bytes each) for even a busy portal's keyed creates.
BOUND_SECONDS = 7 * 24 * 3600
# Long enough for any create to finish; short enough that a crashed one frees its key soon.
CLAIM_SECONDS = 60
MAX_KEY_LENGTH = 255  # the messages below say so
_KEPT_HEADERS = ("Location", "Cache-Control")


@dataclass(frozen=True, slots=True)
class Answer:
    """A create's first answer, or a claim on the key while it runs (``status`` None)."""

    fingerprint: str
    status: int | None = None
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    def dumps(self) -> bytes:
        return orjson.dumps(
            {
                "fingerprint": self.fingerprint,
                "status": self.status,
                "body": self.body.decode(),
                "content_type": self.content_type,
                "headers": self.headers,
            }
        )

    @classmethod
    def loads(cls, raw: bytes | str) -> Answer:
        data: dict[str, Any] = orjson.loads(raw)
        return cls(
            fingerprint=data["fingerprint"],
            status=data["status"],
            body=data["body"].encode(),
            content_type=data["content_type"],
            headers=tuple((name, value) for name, value in data["headers"]),
        )


class AnswerStore(Protocol):
    async def claim(self, key: str, claim: Answer) -> Answer | None:
        """Bind the key to ``claim.fingerprint`` for ``BOUND_SECONDS`` unless it is bound to
        another, then store ``claim`` unless the key is taken. Return what holds it (a claim
        carrying the other fingerprint when bound to another request), None if now ours."""

    async def keep(self, key: str, answer: Answer) -> None:
        """Keep the first answer for ``KEPT_SECONDS``."""

    async def release(self, key: str) -> None:
        """Free the key: the create answered with an error and stored nothing."""


class LocalAnswers:
    """Answers and bindings kept in this process, the oldest evicted past ``max_entries``."""

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self._entries: OrderedDict[str, tuple[float, Answer]] = OrderedDict()
        self._bindings: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max_entries = max_entries

    async def claim(self, key: str, claim: Answer) -> Answer | None:
        now = time.monotonic()
        bound = self._bindings.get(key)
        if bound is None or bound[0] <= now:
            _put(self._bindings, key, (now + BOUND_SECONDS, claim.fingerprint), self._max_entries)
        elif bound[1] != claim.fingerprint:
            return Answer(bound[1])
        held = self._entries.get(key)
        if held is not None and held[0] > now:
            return held[1]
        _put(self._entries, key, (now + CLAIM_SECONDS, claim), self._max_entries)
        return None

    async def keep(self, key: str, answer: Answer) -> None:
        _put(self._entries, key, (time.monotonic() + KEPT_SECONDS, answer), self._max_entries)

    async def release(self, key: str) -> None:
        self._entries.pop(key, None)


def _put(entries: OrderedDict[str, Any], key: str, value: Any, max_entries: int) -> None:
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > max_entries:
        entries.popitem(last=False)


# Bind (unless bound to another request), then claim (unless taken), as one atomic step.
# KEYS: the binding, the answer. ARGV: fingerprint, binding TTL, claim, claim TTL.
# Returns {0, bound fingerprint}, {1} when the key is now ours, or {2, the answer holding it}.
_CLAIM_SCRIPT = """
local bound = redis.call('GET', KEYS[1])
if bound and bound ~= ARGV[1] then return {0, bound} end
if not bound then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'EX', ARGV[4]) then return {1} end
return {2, redis.call('GET', KEYS[2])}
"""


class RedisAnswers:
    """Answers kept in Redis, shared by every process; the local store stands in while it is
    down, so a Redis outage costs cross-process replay, never a create."""

    def __init__(self, client: aioredis.Redis, prefix: str, fallback: LocalAnswers) -> None:
        self._client = client
        self._answers = prefix + "idempotency:answer:"
        self._bindings = prefix + "idempotency:bound:"
        self._claim = client.register_script(_CLAIM_SCRIPT)
        self._fallback = fallback
        self._backoff = Backoff("Redis", "idempotency keys")

    async def claim(self, key: str, claim: Answer) -> Answer | None:
        if self._backoff.waiting:
            return await self._fallback.claim(key, claim)
        try:
            outcome, *held = await self._claim(
                keys=[self._bindings + key, self._answers + key],
                args=[claim.fingerprint, BOUND_SECONDS, claim.dumps(), CLAIM_SECONDS],
            )
        except Exception as exc:
            self._backoff.failed(exc)
            return await self._fallback.claim(key, claim)
        self._backoff.succeeded()
        if outcome == 0:
            return Answer(held[0].decode())
        return None if outcome == 1 else Answer.loads(held[0])

    async def keep(self, key: str, answer: Answer) -> None:
        if self._backoff.waiting:
            return await self._fallback.keep(key, answer)
        try:
            await self._client.set(self._answers + key, answer.dumps(), ex=KEPT_SECONDS)
        except Exception as exc:
            self._backoff.failed(exc)
            await self._fallback.keep(key, answer)
        else:
            self._backoff.succeeded()

    async def release(self, key: str) -> None:
        if self._backoff.waiting:
            return await self._fallback.release(key)
        try:
            await self._client.delete(self._answers + key)
        except Exception as exc:
            self._backoff.failed(exc)
            await self._fallback.release(key)
        else:
            self._backoff.succeeded()


async def idempotency_ctx(app: web.Application) -> AsyncIterator[None]:
    """The answer store: Redis when configured (set up by then), else this process."""
    local = LocalAnswers()
    redis = app[keys.REDIS]
    app[plugin_host_keys.ANSWERS] = (
        RedisAnswers(redis, app[keys.SETTINGS].redis.key_prefix, local)
        if redis is not None
        else local
    )
    yield


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def idempotent(handler: Handler) -> Handler:
    """``handler`` (a create) made safe to retry with an ``Idempotency-Key``."""

    async def create(request: web.Request) -> web.StreamResponse:
        key = request.headers.get(HEADER)
        identity = request.get(identity_keys.IDENTITY)
        if key is None or identity is None:
            return await handler(request)
        _check_key(key)
        scope = key_scope(request.match_info.route.name or request.path, identity, key)
        fingerprint = hashlib.sha256(
            request.path_qs.encode() + b"\n" + await read_body(request)
        ).hexdigest()
        store = request.app[plugin_host_keys.ANSWERS]
        held = await store.claim(scope, Answer(fingerprint))
        if held is not None:
            return _replay(held, fingerprint)
        # The derived id names this request under this key, not the key alone.
        request[plugin_host_keys.IDEMPOTENCY_SCOPE] = f"{scope}:{fingerprint}"
        try:
            response = await handler(request)
        except BaseException:
            await store.release(scope)
            raise
        if isinstance(response, web.Response) and 200 <= response.status < 300:
            await store.keep(scope, _answer(fingerprint, response))
        else:
            await store.release(scope)
        return response

    return create


def key_scope(route: str, identity: Identity, key: str) -> str:
    """Whose key this is: the route, and the caller's role, agency and subject, so that two
    agencies' ``official-1`` (or an official and a citizen of one subject) never share keys."""
    caller = [route, identity.role.value, identity.agency, identity.subject, key]
    return hashlib.sha256(orjson.dumps(caller)).hexdigest()


def resource_id(request: web.Request, new: Callable[[], str] = new_id) -> str:
    """The id of the resource a create makes: ``new()``, or, when the create carries an
    ``Idempotency-Key``, an id as long derived from the scoped key and the request's
    fingerprint, so that every retry names the same resource and another request another.
    Unguessable either way: the derivation is keyed with a server secret. Hex, so it also fits
    where ``new`` makes hex ids."""
    fresh = new()
    scope = request.get(plugin_host_keys.IDEMPOTENCY_SCOPE)
    if scope is None:
        return fresh
    return request.app[identity_keys.VERIFIER].citizen_hash("idempotency:" + scope)[: len(fresh)]


async def already_stored(conn: AsyncConnection, id_column: sa.Column[Any], value: str) -> bool:
    """Whether a create's resource is stored already: its retry must not store it twice."""
    found = await conn.scalar(sa.select(id_column).where(id_column == value))
    return found is not None


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise BadRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            errors=[field_error(HEADER, "1 to 255 printable ASCII characters")],
        )


def _replay(held: Answer, fingerprint: str) -> web.Response:
    if held.fingerprint != fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was used for a different request",
            errors=[field_error(HEADER, "already used for a different request")],
        )
    if held.status is None:
        raise _InProgress(
            "a request with this Idempotency-Key is still in progress; retry shortly",
            headers={"Retry-After": "1"},
        )
    return web.Response(
        status=held.status,
        body=held.body,
        content_type=held.content_type,
        headers={**dict(held.headers), REPLAYED_HEADER: "true"},
    )


class _InProgress(Conflict):
    slug = "idempotency-in-progress"


def _answer(fingerprint: str, response: web.Response) -> Answer:
    body = response.body
    return Answer(
        fingerprint=fingerprint,
        status=response.status,
        body=body if isinstance(body, bytes) else b"",
        content_type=response.content_type,
        headers=tuple(
            (name, response.headers[name]) for name in _KEPT_HEADERS if name in response.headers
        ),
    )
