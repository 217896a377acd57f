"""The flood generator's pure parts: classification, percentiles, schedule, mix, parsing."""

from __future__ import annotations

import random
from array import array
from dataclasses import replace

import pytest

from loadtests.flood import (
    FloodConfig,
    FloodResult,
    Outcome,
    ResponseParser,
    arrival_offsets,
    classify_status,
    parse_mix,
    percentile,
    pool_that_never_binds,
    request_head,
    source_address,
    weighted_round_robin,
)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.OK),
        (201, Outcome.OK),
        (299, Outcome.OK),
        (304, Outcome.NOT_MODIFIED),
        (301, Outcome.OTHER_STATUS),
        (429, Outcome.RATE_LIMITED),
        (503, Outcome.SHED),
        (404, Outcome.OTHER_4XX),
        (409, Outcome.OTHER_4XX),
        (500, Outcome.OTHER_5XX),
        (502, Outcome.OTHER_5XX),
        (504, Outcome.OTHER_5XX),
    ],
)
def test_statuses_are_classified(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0) == 1.0
    assert percentile([0.25, 4.0], 50) == 0.25
    assert percentile([0.25, 4.0], 51) == 4.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 99) is None


def test_percentile_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_uniform_arrivals_are_exact() -> None:
    offsets = arrival_offsets(160, 0.25, "uniform", random.Random(1))
    assert len(offsets) == 40
    assert offsets[0] == 0.0
    assert offsets[1] == pytest.approx(1 / 160)
    assert offsets[-1] == pytest.approx(39 / 160)


def test_poisson_arrivals_stay_in_the_window_and_near_the_rate() -> None:
    offsets = arrival_offsets(1000, 10, "poisson", random.Random(7))
    assert all(0 <= at < 10 for at in offsets)
    assert list(offsets) == sorted(offsets)
    # 10,000 expected; the standard deviation is 100, so 5% is 5 sigma.
    assert 9500 <= len(offsets) <= 10500


def test_unknown_arrivals_are_refused() -> None:
    with pytest.raises(ValueError, match="poisson or uniform"):
        arrival_offsets(1, 1, "bursty", random.Random(1))


def test_weighted_round_robin_gives_exact_shares_interleaved() -> None:
    picks = weighted_round_robin([9, 1], 20)
    assert picks.count(0) == 18
    assert picks.count(1) == 2
    assert picks.index(1) < 10  # spread out, not bunched at the end
    assert list(weighted_round_robin([1, 1], 4)) == [0, 1, 0, 1]
    three = weighted_round_robin([2, 1, 1], 40)
    assert (three.count(0), three.count(1), three.count(2)) == (20, 10, 10)


def test_source_addresses_are_distinct_loopback_hosts() -> None:
    addresses = [source_address(n) for n in range(70_000)]
    assert len(set(addresses)) == len(addresses)
    assert addresses[0] == "127.1.0.1"
    for address in addresses:
        octets = [int(part) for part in address.split(".")]
        assert octets[0] == 127
        assert 1 <= octets[3] <= 254


def test_mix_names_and_custom_paths() -> None:
    read, sign, custom = parse_mix("read=90, sign=10, GET:/api/v1/information?q=tax=5", "P1")
    assert (read.method, read.path, read.weight) == ("GET", "/api/v1/petitions/P1", 90)
    assert sign.path == "/api/v1/petitions/P1/signatures"
    assert sign.fresh_citizen
    assert (custom.method, custom.path, custom.weight) == ("GET", "/api/v1/information?q=tax", 5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("read=90", "petition id"), ("bogus=1", "unknown"), ("hello=0", "positive"), ("", "empty")],
)
def test_bad_mixes_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mix(spec)


def test_signing_requests_leave_room_for_the_token() -> None:
    (sign,) = parse_mix("sign=1", "P1")
    prefix, suffix = request_head(sign, "127.0.0.1:8080")
    request = prefix + b"TOKEN" + suffix
    assert request.startswith(b"POST /api/v1/petitions/P1/signatures HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 0\r\n" in request
    assert request.endswith(b"\r\nAuthorization: Bearer TOKEN\r\n\r\n")


def test_parser_waits_for_the_whole_body() -> None:
    parser = ResponseParser()
    assert not parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n")
    assert not parser.feed(b"\r\nab")
    assert parser.feed(b"cde")
    assert parser.status == 200
    assert parser.keep_alive


def test_parser_reads_chunked_bodies() -> None:
    parser = ResponseParser()
    head = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert not parser.feed(head + b"3\r\nabc\r\n")
    assert parser.feed(b"0\r\n\r\n")
    assert parser.status == 503


def test_parser_honours_connection_close_and_bodiless_304() -> None:
    parser = ResponseParser()
    assert parser.feed(
        b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\nContent-Length: 9\r\n\r\n"
    )
    assert parser.status == 304
    assert not parser.keep_alive


def make_result(offered: float, ok: int, shed: int, latencies: list[float]) -> FloodResult:
    return FloodResult(
        offered_rate=offered,
        duration=2.0,
        give_up=2.0,
        scheduled=ok + shed,
        sent=ok + shed,
        counts={"read": {"2xx": ok, "503": shed}},
        within_slo={"read": ok},
        latencies={"2xx": array("d", latencies)},
        lags=array("d", [0.001] * (ok + shed)),
    )


def test_results_merge_across_processes() -> None:
    merged = make_result(100, 150, 50, [0.1, 0.2]).merge(make_result(100, 50, 0, [0.3]))
    assert merged.offered_rate == 200
    assert merged.processes == 2
    assert merged.outcome_count("2xx") == 200
    assert merged.outcome_count("503") == 50
    assert merged.goodput == 100.0
    assert merged.latency_percentile("2xx", 50) == 0.2
    assert merged.latency_percentile("2xx", 99) == 0.3
    assert merged.kept_schedule


def test_summary_reports_milliseconds_and_outcomes() -> None:
    summary = make_result(100, 150, 50, [0.1, 0.2]).summary()
    assert summary["goodput"] == 75.0
    assert summary["outcomes"]["503"] == 50  # type: ignore[index]
    assert summary["latency_ms"] == {"2xx": {"p50": 100.0, "p99": 200.0}}


def test_the_default_pool_never_binds() -> None:
    # A request holds a connection for at most the give-up: rate x give-up, plus a margin.
    assert pool_that_never_binds(1000, 2.0) == 3256
    # ... beside one idle kept-alive connection per client, which is never evicted for room.
    assert pool_that_never_binds(1000, 2.0, clients=2048) == 3256 + 2048
    config = FloodConfig(url="http://x", rate=1000, duration=1, mix=parse_mix("hello=1"))
    assert config.connection_pool == 3256 + 2048
    assert replace(config, max_connections=10).connection_pool == 10


def test_resets_and_failed_connections_count_as_unanswered() -> None:
    flood = FloodResult(
        offered_rate=10.0,
        duration=1.0,
        give_up=2.0,
        scheduled=10,
        sent=10,
        on_new_connection=4,
        counts={"read": {"2xx": 4, "timeout": 1, "reset": 2, "connect_error": 3}},
    )
    assert flood.unanswered == 6
    assert flood.new_connection_share == 0.4


def test_merged_results_add_connections_and_missing_retry_after() -> None:
    one = make_result(100, 10, 0, [0.1])
    one.connections_opened, one.on_new_connection, one.missing_retry_after = 5, 5, 1
    other = make_result(100, 10, 0, [0.1])
    other.connections_opened, other.on_new_connection, other.missing_retry_after = 3, 2, 0
    merged = one.merge(other)
    assert (merged.connections_opened, merged.on_new_connection) == (8, 7)
    assert merged.missing_retry_after == 1
    assert merged.within_slo == {"read": 20}


def test_the_parser_notices_retry_after() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 503 X\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n")
    assert parser.retry_after
    parser.reset()
    assert parser.feed(b"HTTP/1.1 429 X\r\nContent-Length: 0\r\n\r\n")
    assert not parser.retry_after
