"""The fast lane: hot public reads answered from pre-rendered bytes, before aiohttp parses them.

Under a read flood the per-request cost of aiohttp's parser, request object, middleware chain
and response writer dominates, and a refusal rendered by the same chain costs about as much as
the answer. So the cheapest thing to do with a read of a hot petition is to answer it: when a
handler serves a public document from the micro-cache (``core.http.cache.cached_response``), it also
*publishes* the answer here, keyed by the exact request target. The connection layer then
answers later requests for that target straight from ``data_received``, as long as the
micro-cache still holds the same rendered document (so the lane is never staler than the cache,
and an invalidation reaches it at once).

Only what the ordinary path would have answered identically goes through the lane:

* ``GET`` or ``HEAD``, HTTP/1.1, a complete head and no body;
* no ``Authorization`` (anonymous answers are the same for everyone), no ``Upgrade``, ``Expect``,
  ``Transfer-Encoding`` or non-zero ``Content-Length``;
* nothing aiohttp's parser would refuse with a 400: each header line a token, a colon and a
  value without control characters (so no NUL, no CR or LF alone, no obs-fold), one ``Host``,
  no repeated singleton header, and a head well inside aiohttp's size limits. The lane does not
  re-implement the parser's every check: what it cannot vouch for cheaply it hands to aiohttp,
  which answers 400 where it must (``tests/core/http/test_fastlane_differential.py`` compares the
  two over generated heads);
* within the client's rate budget: the same GCRA bucket as the ordinary path without Redis, and
  with Redis tokens leased from the shared bucket (``core.admission.leases``), so that all
  instances share one budget. A client without a token in hand is handed to the ordinary path,
  which decides, and refuses a client over its budget with the localised 429.

A plugin may also let the lane open an event stream (``open_streams``): for a target of the
stream's form whose first event the plugin can render without a database read, the lane checks
the request and the rate budget as above, answers the head and the first event, and hands the
connection to the plugin's stream machinery, which writes the rest of the stream to it (the
connection layer then reads nothing more from it, and tells the stream when it is lost). Only a
connection aiohttp never had is handed over: aiohttp's keep-alive timer would close another.
A stream the opener refuses after the rate check (a cap, overload) has spent its token; the
ordinary path, which then refuses it with its problem, charges another.

Everything else returns ``None`` and takes the ordinary path. Answers carry the same headers as
the ordinary path (ETag, Cache-Control, RateLimit, X-Request-Id, Date, Server), honour
``If-None-Match`` (304) and ``Connection: close``, and are counted in the same metrics.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING, Protocol

from core.admission.clients import ClientAddressing, IPAddress, address_behind_proxies
from core.admission.gcra import ceil_seconds, ratelimit_headers
from core.http.cache import etag_matches
from core.http.requestids import request_id_for
from core.http.server_name import SERVER_NAME

if TYPE_CHECKING:
    import asyncio

    from core.admission.gcra import RateDecision, SyncRateLimiter
    from core.http.cache import MicroCache, RenderedBody
    from core.observability.metrics import Metrics
    from core.plugin_host.priority import RatePolicy

# Headers whose presence means the ordinary path must decide: credentials, a body, a protocol
# switch, an expectation the lane does not implement, or a cross-origin request (whose CORS
# headers ``core.http.cors`` adds; browsers send no Origin on a same-origin GET).
_ORDINARY_PATH_HEADERS = frozenset(
    {b"authorization", b"transfer-encoding", b"upgrade", b"expect", b"origin"}
)
# A header line aiohttp accepts: a token, a colon, and a value without control characters but
# HTAB (RFC 9110 5.5; aiohttp refuses the others with a 400, as it refuses CR or LF alone).
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([^\x00-\x08\x0a-\x1f\x7f]*)")
# Headers aiohttp refuses to see twice (aiohttp.http_parser.SINGLETON_HEADERS); Host is also
# required in HTTP/1.1.
_SINGLETONS = frozenset(
    {
        b"content-length",
        b"content-location",
        b"content-range",
        b"content-type",
        b"etag",
        b"host",
        b"max-forwards",
        b"server",
        b"transfer-encoding",
        b"user-agent",
    }
)
# Well inside aiohttp's limits (8190 bytes a line, 128 headers), so that no limit is reached.
_MAX_HEAD_BYTES = 8190
_MAX_FIELDS = 100
_SERVER_LINE = f"Server: {SERVER_NAME}\r\n".encode()
_MAX_ENTRIES = 4096
_MAX_CLIENTS = 65536


@dataclass(frozen=True, slots=True)
class LaneEntry:
    """One published answer: which cached document it is, and its invariant header lines."""

    cache_key: str
    rendered: RenderedBody
    route: str
    rate: RatePolicy | None
    ok_head: bytes
    not_modified_head: bytes


class StreamConnection(Protocol):
    """A connection the lane can hand to a stream: from then on the stream writes to it."""

    def hand_over(self, on_lost: Callable[[], None]) -> asyncio.Transport:
        """Read nothing more, keep no head deadline, call ``on_lost`` when the connection is
        lost; the transport to write to."""


class StreamOpener(Protocol):
    """A plugin's way to open a stream on a connection the lane answered."""

    def ready(self, key: str) -> bool:
        """Whether the stream of ``key`` could start now with no I/O (its first event at hand)."""

    def open(
        self, key: str, last_event_id: bytes | None, address: str, connection: StreamConnection
    ) -> bytes | None:
        """Take ``connection`` and return the first bytes of the (chunked) body, or None to
        leave the request to the ordinary path (which refuses what must be refused)."""


@dataclass(frozen=True, slots=True)
class StreamRoute:
    """Targets ``prefix + key + suffix`` whose streams a plugin opens from the lane."""

    prefix: bytes
    suffix: bytes
    route: str
    rate: RatePolicy | None
    opener: StreamOpener
    head: bytes


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
    b"X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n" + _SERVER_LINE
)
_LAST_EVENT_ID = b"last-event-id"


class _DateHeader:
    """The ``Date`` line, formatted once a second as aiohttp does."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self._line


def _asks_to_close(connection: bytes) -> bool:
    """Whether a ``Connection`` value lists the ``close`` option (a comma-separated list of
    case-insensitive tokens, as aiohttp reads it)."""
    lowered = connection.lower()
    return b"close" in lowered and any(
        token.strip(b" \t") == b"close" for token in lowered.split(b",")
    )


class FastLane:
    """Published answers by request target, and the code that serves them from raw bytes."""

    def __init__(
        self,
        *,
        cache: MicroCache,
        metrics: Metrics,
        limiter: SyncRateLimiter | None,
        trusted: ClientAddressing,
        access_log: logging.Logger | None = None,
        max_entries: int = _MAX_ENTRIES,
    ) -> None:
        self._cache = cache
        self._metrics = metrics
        self._limiter = limiter
        self._trusted = trusted
        self._access_log = access_log
        self._max_entries = max_entries
        self._entries: dict[bytes, LaneEntry] = {}
        self._date = _DateHeader()
        # Resolving a forwarded chain parses addresses, which costs more than the rest of the
        # answer; a crowd repeats itself, so the resolved address is kept per peer and chain.
        self._clients: dict[tuple[IPAddress | None, tuple[str, ...], tuple[str, ...]], str] = {}
        self._rate_lines: dict[tuple[str, int, int], bytes] = {}
        self._streams: list[StreamRoute] = []

    def __len__(self) -> int:
        return len(self._entries)

    def use_limiter(self, limiter: SyncRateLimiter) -> None:
        """Check budgets with ``limiter`` from now on (the leased budget, once Redis is wired)."""
        self._limiter = limiter

    def open_streams(
        self,
        prefix: bytes,
        suffix: bytes,
        *,
        route: str,
        rate: RatePolicy | None,
        opener: StreamOpener,
    ) -> None:
        """Open the event streams of ``prefix + key + suffix`` from the lane, through
        ``opener``, where it is ready."""
        self._streams.append(StreamRoute(prefix, suffix, route, rate, opener, _STREAM_HEAD))

    def _stream_for(self, target: bytes, method: bytes) -> tuple[StreamRoute, str] | None:
        if method != b"GET":
            return None
        for stream in self._streams:
            if target.startswith(stream.prefix) and target.endswith(stream.suffix):
                key = target[len(stream.prefix) : len(target) - len(stream.suffix)]
                if key and b"/" not in key and b"?" not in key:
                    text = key.decode("latin-1")
                    if stream.opener.ready(text):
                        return stream, text
        return None

    def publish(
        self,
        target: bytes,
        *,
        cache_key: str,
        rendered: RenderedBody,
        route: str,
        rate: RatePolicy | None,
        cache_control: str,
    ) -> None:
        """Serve ``target`` from ``rendered`` while the micro-cache holds it under ``cache_key``."""
        entry = self._entries.get(target)
        if entry is not None and entry.rendered is rendered:
            return
        common = (
            f"ETag: {rendered.etag}\r\nCache-Control: {cache_control}\r\n".encode() + _SERVER_LINE
        )
        if entry is None and len(self._entries) >= self._max_entries:
            # A flood of distinct query strings must not grow memory; the hot targets are
            # published again on their next ordinary answer.
            self._entries.clear()
        self._entries[target] = LaneEntry(
            cache_key=cache_key,
            rendered=rendered,
            route=route,
            rate=rate,
            ok_head=(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(rendered.body)}\r\n".encode()
                + common
            ),
            not_modified_head=b"HTTP/1.1 304 Not Modified\r\n" + common,
        )

    def answer(
        self,
        head: bytes,
        peer: IPAddress | None,
        arrived: float,
        connection: StreamConnection | None = None,
    ) -> tuple[bytes, bool]:
        """The whole response to ``head`` (a request head without its final blank line) and
        whether to close the connection after it; ``(b"", False)`` means: take the ordinary
        path. With ``connection``, a stream's target may open its stream on it: the answer is
        then the stream's head and first event, and the connection is the stream's."""
        line_end = head.find(b"\r\n")
        if line_end < 0 or len(head) > _MAX_HEAD_BYTES:  # no Host, or too long to vouch for
            return b"", False
        parts = head[:line_end].split(b" ")
        if len(parts) != 3 or parts[2] != b"HTTP/1.1":
            return b"", False
        method, target = parts[0], parts[1]
        if method != b"GET" and method != b"HEAD":
            return b"", False
        entry = self._entries.get(target)
        stream: tuple[StreamRoute, str] | None = None
        if entry is None:
            if connection is None or not self._streams:
                return b"", False
            stream = self._stream_for(target, method)
            if stream is None:
                return b"", False
        elif self._cache.peek(entry.cache_key) is not entry.rendered:
            del self._entries[target]
            return b"", False

        close = False
        if_none_match: bytes | None = None
        incoming_id: bytes | None = None
        last_event_id: bytes | None = None
        forwarded: list[str] = []
        x_forwarded_for: list[str] = []
        lines = head[line_end + 2 :].split(b"\r\n")
        if len(lines) > _MAX_FIELDS:
            return b"", False
        singletons: set[bytes] = set()
        for line in lines:
            field = _FIELD.fullmatch(line)
            if field is None:
                return b"", False
            name = field[1].lower()
            value = field[2].strip(b" \t")
            if name in _SINGLETONS:
                if name in singletons:
                    return b"", False
                singletons.add(name)
            if name in _ORDINARY_PATH_HEADERS:
                return b"", False
            if name == b"content-length":
                if value != b"0":
                    return b"", False
            elif name == b"connection":
                close = close or _asks_to_close(value)
            elif name == b"if-none-match":
                if_none_match = value
            elif name == b"x-request-id":
                incoming_id = value
            elif name == _LAST_EVENT_ID:
                last_event_id = value
            elif name == b"forwarded":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-forwarded-for":
                x_forwarded_for.append(value.decode("latin-1"))
        if b"host" not in singletons:
            return b"", False

        rate_lines = b""
        rate = entry.rate if entry is not None else stream[0].rate if stream is not None else None
        if rate is not None and self._limiter is not None:
            address = self._client_address(peer, forwarded, x_forwarded_for)
            decision = self._limiter.check_now(f"{rate.name}:addr:{address}", rate)
            if not decision.allowed:
                return b"", False
            rate_lines = self._ratelimit_lines(rate, decision)

        request_id = request_id_for(
            None if incoming_id is None else incoming_id.decode("latin-1")
        ).encode()
        if stream is not None:
            assert connection is not None
            address = self._client_address(peer, forwarded, x_forwarded_for)
            return self._open_stream(
                stream, last_event_id, address, connection, request_id, arrived
            ), False
        assert entry is not None
        if if_none_match is not None and etag_matches(
            if_none_match.decode("latin-1"), entry.rendered.etag
        ):
            status, response_head, body = 304, entry.not_modified_head, b""
        else:
            status, response_head = 200, entry.ok_head
            body = b"" if method == b"HEAD" else entry.rendered.body
        response = b"".join(
            (
                response_head,
                self._date.line(),
                rate_lines,
                b"X-Request-Id: ",
                request_id,
                b"\r\nConnection: close\r\n\r\n" if close else b"\r\n\r\n",
                body,
            )
        )
        method_text = "GET" if method == b"GET" else "HEAD"
        elapsed = time.monotonic() - arrived
        self._metrics.observe_request(entry.route, method_text, status, elapsed)
        if self._access_log is not None:
            self._access_log.info(
                '%s "%s %s" %d %.1fms id=%s lane',
                self._client_address(peer, forwarded, x_forwarded_for),
                method_text,
                target.partition(b"?")[0].decode("latin-1"),
                status,
                elapsed * 1000,
                request_id.decode(),
            )
        return response, close

    def _open_stream(
        self,
        stream: tuple[StreamRoute, str],
        last_event_id: bytes | None,
        address: str,
        connection: StreamConnection,
        request_id: bytes,
        arrived: float,
    ) -> bytes:
        route, key = stream
        first = route.opener.open(key, last_event_id, address, connection)
        if first is None:
            return b""
        elapsed = time.monotonic() - arrived
        # Counted when its first event goes out: the stream itself may last an hour.
        self._metrics.observe_request(route.route, "GET", 200, elapsed)
        if self._access_log is not None:
            self._access_log.info(
                '%s "GET %s" 200 %.1fms id=%s lane stream',
                address,
                (route.prefix + key.encode("latin-1") + route.suffix).decode("latin-1"),
                elapsed * 1000,
                request_id.decode(),
            )
        # The headers the ordinary path sends: it prepares a stream before the middlewares that
        # add RateLimit and X-Request-Id see the response, so neither is among them.
        return b"".join((route.head, self._date.line(), b"Connection: close\r\n\r\n", first))

    def _client_address(
        self, peer: IPAddress | None, forwarded: list[str], x_forwarded_for: list[str]
    ) -> str:
        key = (peer, tuple(forwarded), tuple(x_forwarded_for))
        address = self._clients.get(key)
        if address is None:
            if len(self._clients) >= _MAX_CLIENTS:
                self._clients.clear()
            address = self._clients[key] = address_behind_proxies(
                peer, forwarded, x_forwarded_for, self._trusted
            )
        return address

    def _ratelimit_lines(self, rate: RatePolicy, decision: RateDecision) -> bytes:
        """The RateLimit header lines of an allowed request (which depend only on the policy,
        the remaining count and the whole seconds to reset), each formatted once."""
        key = (rate.name, decision.remaining, ceil_seconds(decision.reset_after))
        lines = self._rate_lines.get(key)
        if lines is None:
            if len(self._rate_lines) >= _MAX_CLIENTS:
                self._rate_lines.clear()
            lines = self._rate_lines[key] = "".join(
                f"{name}: {value}\r\n" for name, value in ratelimit_headers(rate, decision).items()
            ).encode()
        return lines
