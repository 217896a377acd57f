"""The wrk Lua script generator, the parsing of its result line, and (slow) a real wrk run."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web

from loadtests.wrk import (
    RESULT_MARKER,
    WRK_INSTALL_HINT,
    lua_string,
    parse_wrk_output,
    run_wrk,
    wrk_available,
    wrk_lua_script,
)
from tests.support.services import service_unavailable


def test_static_script_counts_statuses_without_tokens() -> None:
    script = wrk_lua_script(path="/hello")
    assert 'local tokens_file = ""' in script
    assert 'local path = "/hello"' in script
    assert "function response(status, headers, body)" in script
    assert RESULT_MARKER.strip() in script


def test_token_script_partitions_tokens_between_threads() -> None:
    script = wrk_lua_script(method="POST", path="/s", tokens_file=Path("/tmp/t.txt"), threads=3)
    assert 'local tokens_file = "/tmp/t.txt"' in script
    assert "local thread_count = 3" in script
    assert 'local method = "POST"' in script
    assert "line_number % thread_count == thread_index" in script
    assert '["Authorization"] = "Bearer " .. token' in script


def test_lua_strings_are_escaped() -> None:
    assert lua_string('a"b\\c') == '"a\\"b\\\\c"'


def test_result_line_is_parsed() -> None:
    line = RESULT_MARKER + json.dumps(
        {
            "requests": 30,
            "duration_us": 2_000_000,
            "errors": {"connect": 0, "read": 1, "write": 0, "status": 5, "timeout": 0},
            "latency_us": {"p50": 1500, "p90": 2000, "p99": 9000, "max": 12000, "mean": 1600.5},
            "statuses": {"201": 20, "200": 5, "503": 5},
            "tokens_used": 25,
            "tokens_exhausted": 5,
        }
    )
    result = parse_wrk_output("Running 2s test\n" + line + "\n", "wrk ...")
    assert result.duration == 2.0
    assert result.rate_of(201) == 10.0
    assert result.success_rate == 12.5
    assert result.non_2xx == {503: 5}
    assert result.latency_ms["p99"] == 9.0
    assert result.tokens_exhausted == 5


def test_missing_result_line_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no result line"):
        parse_wrk_output("Running 1s test\n")


@contextmanager
def recording_server(seen: list[str], header: str) -> Iterator[int]:
    """A bare aiohttp server in a thread that records ``header`` of every request."""
    ready = threading.Event()
    stop = threading.Event()
    port: list[int] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.headers[header])
        return web.json_response({"ok": True}, status=201)

    async def serve() -> None:
        app = web.Application()
        app.router.add_route("*", "/record", record)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        ready.set()
        await asyncio.to_thread(stop.wait, 60)
        await runner.cleanup()

    server = threading.Thread(target=asyncio.run, args=(serve(),))
    server.start()
    try:
        assert ready.wait(10)
        yield port[0]
    finally:
        stop.set()
        server.join(10)


@pytest.fixture
def wrk() -> None:
    """wrk on PATH: a skip without it, a failure where it is required (CI installs it)."""
    if not wrk_available():
        service_unavailable(WRK_INSTALL_HINT)


@pytest.mark.slow
@pytest.mark.usefixtures("wrk")
def test_wrk_spends_each_token_once(tmp_path: Path) -> None:
    seen: list[str] = []
    tokens = [f"token-{n}" for n in range(200_000)]
    tokens_file = tmp_path / "tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    script = tmp_path / "sign.lua"
    script.write_text(
        wrk_lua_script(method="POST", path="/record", tokens_file=tokens_file, threads=2)
    )
    with recording_server(seen, "Authorization") as port:
        result = run_wrk(
            f"http://127.0.0.1:{port}/record", script, connections=4, duration=1, threads=2
        )
    counts = Counter(token.removeprefix("Bearer ") for token in seen)
    assert counts, "the server saw no request"
    assert set(counts) <= set(tokens)
    assert result.tokens_exhausted == 0
    assert all(count == 1 for count in counts.values())
    assert result.status_count(201) <= len(counts) <= result.tokens_used


@pytest.mark.slow
@pytest.mark.usefixtures("wrk")
def test_wrk_sends_each_forwarded_client_in_turn(tmp_path: Path) -> None:
    seen: list[str] = []
    script = tmp_path / "read.lua"
    script.write_text(wrk_lua_script(path="/record", forwarded_clients=300))
    with recording_server(seen, "X-Forwarded-For") as port:
        run_wrk(f"http://127.0.0.1:{port}/record", script, connections=1, duration=1)
    addresses = [f"10.0.{i // 256}.{i % 256}" for i in range(300)]
    assert len(seen) > 300
    assert set(seen) == set(addresses)
    # One connection, so the server sees them in the order sent: each the next in turn.
    first = addresses.index(seen[0])
    assert seen == [addresses[(first + i) % 300] for i in range(len(seen))]
