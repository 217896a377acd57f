"""Differential fuzzing of the fast lane's reading of a request head against aiohttp's parsers.

The lane answers some heads before aiohttp sees them, so it must never answer a head that
aiohttp refuses (aiohttp answers those 400), and where it answers it must read the head as
aiohttp does: the same method, target and version, no body, and the same keep-alive decision.
Heads are generated valid and malformed (control characters, CR and LF alone, bad names,
obs-fold, missing and duplicate singleton headers, other versions, absolute-form targets...)
and compared with aiohttp's C parser (llhttp) and its pure-Python parser. The lane may hand
over more than it must: that only costs speed, and ``test_the_lane_answers_ordinary_heads``
keeps it answering the heads real clients send.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from aiohttp import http_parser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core.http.fastlane
from core.admission.clients import ClientAddressing
from loadtests.lane_cost import published_lane

# The limits aiohttp's RequestHandler gives its parser (the server keeps its defaults).
LIMITS = {"max_line_size": 8190, "max_field_size": 8190, "max_headers": 128}
PEER = ipaddress.ip_address("127.0.0.1")
PUBLISHED = (
    "/api/v1/petitions/p1",
    "/api/v1/petitions/p1?lang=kk",
    "http://test/api/v1/petitions/p1",
)

# The C parser is what the server runs; without aiohttp's extensions there is only Python's.
C_PARSER = getattr(http_parser, "HttpRequestParserC", None)
PARSERS: list[Any] = [pytest.param(http_parser.HttpRequestParserPy, id="python")]
if C_PARSER is not None:
    PARSERS.append(pytest.param(C_PARSER, id="c"))


LANE = published_lane(
    core.http.fastlane, PUBLISHED, limiter=None, rate=None, trusted=ClientAddressing()
)
# The parsers only keep a reference to a loop; none runs.
PARSER_LOOP = asyncio.new_event_loop()


@dataclass(frozen=True)
class Parsed:
    method: str
    path: str
    version: tuple[int, int]
    should_close: bool
    upgrade: bool
    chunked: bool
    content_length: str | None


def aiohttp_reads(parser_class: Any, head: bytes) -> Parsed | None:
    """The one message aiohttp reads from ``head``, or None when it refuses it."""
    parser = parser_class(mock.Mock(), PARSER_LOOP, 2**16, **LIMITS)
    try:
        messages, upgraded, tail = parser.feed_data(head + b"\r\n\r\n")
    except Exception:  # every refusal: BadHttpMessage, InvalidURLError, LineTooLong...
        return None
    if len(messages) != 1 or tail:
        return None
    message = messages[0][0]
    return Parsed(
        method=message.method,
        path=message.path,
        version=(message.version.major, message.version.minor),
        should_close=message.should_close,
        upgrade=message.upgrade or upgraded,
        chunked=message.chunked,
        content_length=message.headers.get("Content-Length"),
    )


def lane_reads(head: bytes) -> tuple[bool, bool]:
    """Whether the lane answers ``head`` (as the connection layer hands it one), and whether
    it then closes the connection."""
    if not head.startswith((b"GET ", b"HEAD ")):
        return False, False
    response, close = LANE.answer(head, PEER, 0.0)
    return bool(response), close


# -- generated heads ------------------------------------------------------------------------


def mostly(usual: st.SearchStrategy[Any], unusual: st.SearchStrategy[Any]) -> Any:
    """``usual`` nine times in ten: many heads must be close enough to valid to be answered."""
    return st.integers(0, 9).flatmap(lambda n: usual if n else unusual)


NASTY = ["\x00", "\x01", "\x08", "\x0b", "\x1f", "\x7f", "\x80", "\xff", "\t", "\r", "\n", " "]
TEXT = st.text(alphabet=st.sampled_from([*"aZ09-_.,;=/\"'()*", *NASTY]), min_size=0, max_size=6)
GOOD_VALUE = st.text(alphabet='abcXYZ019-_.,;=/ "', min_size=0, max_size=8)
NAMES = [
    "Host",
    "Accept",
    "User-Agent",
    "If-None-Match",
    "X-Request-Id",
    "Connection",
    "Content-Length",
    "X-Forwarded-For",
    "Forwarded",
    "Transfer-Encoding",
    "Upgrade",
    "Expect",
    "Authorization",
    "Content-Type",
    "Content-Encoding",
    "ETag",
    "Server",
    "Max-Forwards",
    "Content-Location",
    "Content-Range",
]
SPECIAL_VALUES = {
    "connection": ["close", "keep-alive", "Close", "closed", "keep-alive, close", "upgrade"],
    "content-length": ["0", "00", "1", "+0", "-0", " 0 ", "0x0", ""],
    "transfer-encoding": ["chunked", "identity"],
    "upgrade": ["websocket", "h2c"],
}


def names() -> st.SearchStrategy[str]:
    usual = st.sampled_from(NAMES).flatmap(
        lambda name: st.sampled_from([name, name.lower(), name.upper()])
    )
    unusual = st.one_of(
        st.sampled_from(["", "X Y", "X@", "Hóst", " Host", "Host ", "\tX", "X\x00", "[x]"]),
        TEXT,
    )
    return mostly(usual, unusual)


@st.composite
def header_lines(draw: st.DrawFn) -> str:
    name = draw(names())
    specials = SPECIAL_VALUES.get(name.lower())
    usual = st.sampled_from(specials) if specials else GOOD_VALUE
    value = draw(mostly(usual, st.one_of(TEXT, st.sampled_from(["a\r\n b", "a\r\n\tb"]))))
    separator = draw(mostly(st.just(": "), st.sampled_from([":", ":\t", " :", ":  ", "::"])))
    return f"{name}{separator}{value}"


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    method = draw(mostly(st.sampled_from(["GET", "HEAD"]), st.sampled_from(["get", "POST", "G"])))
    target = draw(
        mostly(
            st.sampled_from(PUBLISHED),
            st.one_of(
                st.sampled_from(["*", "", "/api/v1/petitions/p1#x", "http:/api/v1/petitions/p1"]),
                st.sampled_from(PUBLISHED).map(lambda t: t + draw(TEXT)),
            ),
        )
    )
    version = draw(
        mostly(
            st.just("HTTP/1.1"),
            st.sampled_from(
                ["HTTP/1.0", "HTTP/2.0", "http/1.1", "HTTP/1.10", "HTTP/1.1 ", "HTTP/1"]
            ),
        )
    )
    space = draw(mostly(st.just(" "), st.sampled_from(["  ", "\t"])))
    hosts = draw(mostly(st.just(["Host: test"]), st.sampled_from([[], ["Host: a", "host: b"]])))
    lines = draw(st.lists(header_lines(), max_size=5))
    order = draw(st.permutations([*hosts, *lines]))
    newline = draw(mostly(st.just("\r\n"), st.sampled_from(["\n", "\r"])))
    text = space.join((method, target, version)) + "".join(newline + line for line in order)
    head = text.encode("utf-8", "surrogateescape")
    # The connection layer hands the lane what comes before the first blank line.
    return head.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize("parser_class", PARSERS)
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=heads())
def test_the_lane_never_answers_a_head_aiohttp_refuses_and_reads_it_as_aiohttp_does(
    parser_class: Any, head: bytes
) -> None:
    answered, close = lane_reads(head)
    if not answered:
        return
    parsed = aiohttp_reads(parser_class, head)
    assert parsed is not None, f"the lane answered a head aiohttp refuses: {head!r}"
    method = head.split(b" ", 1)[0].decode()
    assert (parsed.method, parsed.path, parsed.version) == (
        method,
        head.split(b" ", 2)[1].decode(),
        (1, 1),
    )
    assert (parsed.upgrade, parsed.chunked) == (False, False)
    assert parsed.content_length in (None, "0")
    assert parsed.should_close == close


ORDINARY = [
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test",
    b"HEAD /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nAccept: */*",
    b"GET /api/v1/petitions/p1?lang=kk HTTP/1.1\r\nhost: test\r\nUser-Agent: curl/8.5.0"
    b"\r\nAccept: application/json\r\nAccept-Language: kk, ru;q=0.8\r\nX-Request-Id: r-1",
    b'GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nIf-None-Match: "abc"'
    b"\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nContent-Length: 0"
    b"\r\nConnection: close\r\nCookie: a=\xd0\x90",
    b"GET http://test/api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nForwarded: for=10.0.0.1",
]


@pytest.mark.parametrize("head", ORDINARY)
def test_the_lane_answers_ordinary_heads(head: bytes) -> None:
    assert lane_reads(head)[0] is True


MALFORMED = [
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nX: a\x00b",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nX: a\x7fb",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nX: a\rb",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nX: a\nb",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nX: a\r\n b",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nX@: a",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nHost: other",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nUser-Agent: a\r\nUser-Agent: b",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nContent-Length: 0",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nAccept: */*",
    b"GET /api/v1/petitions/p1 HTTP/1.1\nHost: test",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\n" + b"X: y\r\n" * 128 + b"Z: z",
    b"GET /api/v1/petitions/p1 HTTP/1.1\r\nHost: test\r\nX: " + b"a" * 8190,
]


@pytest.mark.parametrize("head", MALFORMED)
def test_the_lane_hands_heads_aiohttp_refuses_to_aiohttp(head: bytes) -> None:
    assert aiohttp_reads(http_parser.HttpRequestParserPy, head) is None
    assert lane_reads(head)[0] is False
