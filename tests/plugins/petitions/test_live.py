"""The live count stream: first event, coalescing, resume, close, privacy, caps, drain."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from core.observability import keys as observability_keys
from plugins.petitions.lifecycle import Status
from plugins.petitions.state import STATE
from plugins.petitions.watchers import (
    DIRECT_WRITE_LIMIT,
    HEARTBEAT,
    Subscriber,
    chunk,
    event_id,
)
from tests.support.live import EventReader
from tests.support.petitions import (
    SMALL_FIGURES,
    SMALL_THRESHOLDS,
    THRESHOLD,
    petition_url,
    thresholds,
)

FAST = {**SMALL_FIGURES, "live_interval_seconds": 0.2}


def live_url(petition_id: str) -> str:
    return petition_url(petition_id, "/live")


async def open_stream(client: Any, petition_id: str, **headers: str) -> EventReader:
    response = await client.get(live_url(petition_id), headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/event-stream"
    return EventReader(response)


async def test_the_first_event_carries_the_count_and_status_after_a_retry_hint(
    make_client, approved_petition, sign_by
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    petition = await approved_petition(client)
    await sign_by(client, petition["id"], [1, 2])
    reader = await open_stream(client, petition["id"])

    hint = await reader.next()
    first = await reader.next()

    assert hint is not None
    assert hint.retry is not None
    assert 3000 <= hint.retry <= 5000
    assert first is not None
    assert first.name == "count"
    assert first.data == {
        "petition_id": petition["id"],
        "signature_count": 2,
        "status": "restricted",
    }
    assert first.id == 2 * 4


async def test_a_signature_reaches_an_open_stream(make_client, approved_petition, sign_by) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    petition = await approved_petition(client)
    reader = await open_stream(client, petition["id"])
    assert (await reader.next_named("count")).data["signature_count"] == 0

    await sign_by(client, petition["id"], [1])

    event = await reader.next_named("count")
    assert event is not None
    assert event.data["signature_count"] == 1


async def test_signatures_within_one_interval_come_as_one_event(
    make_client, approved_petition, sign_by
) -> None:
    client = await make_client(
        kazakhstan=SMALL_THRESHOLDS, petitions={**SMALL_FIGURES, "live_interval_seconds": 2.0}
    )
    petition = await approved_petition(client)
    reader = await open_stream(client, petition["id"])
    assert (await reader.next_named("count")).data["signature_count"] == 0

    await sign_by(client, petition["id"], [1, 2])

    event = await reader.next_named("count")
    assert event is not None
    assert event.data["signature_count"] == 2
    assert client.app[observability_keys.METRICS].live_events.labels("count")._value.get() == 2


async def test_a_reconnect_with_last_event_id_resumes_without_old_events(
    make_client, approved_petition, sign_by
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    petition = await approved_petition(client)
    await sign_by(client, petition["id"], [1])
    reader = await open_stream(client, petition["id"])
    seen = await reader.next_named("count")
    reader.response.close()
    await sign_by(client, petition["id"], [2])

    resumed = await open_stream(client, petition["id"], **{"Last-Event-ID": str(seen.id)})
    newer = await resumed.next_named("count")
    assert newer.data["signature_count"] == 2
    resumed.response.close()

    current = await open_stream(client, petition["id"], **{"Last-Event-ID": str(newer.id)})
    assert (await current.next()).retry is not None
    with pytest.raises(TimeoutError):
        await current.next_named("count", within=0.6)


async def test_a_last_event_id_that_is_not_an_event_id_is_422(
    make_client, approved_petition
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    petition = await approved_petition(client)

    response = await client.get(live_url(petition["id"]), headers={"Last-Event-ID": "-3"})

    assert response.status == 422
    assert response.content_type == "application/problem+json"


async def test_the_stream_ends_with_a_closed_event_at_the_threshold(
    make_client, approved_petition, sign_by
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    petition = await approved_petition(client)
    reader = await open_stream(client, petition["id"])
    await reader.next_named("count")

    await sign_by(client, petition["id"], range(1, THRESHOLD + 1))

    events = [e for e in await reader.rest() if e.name in ("count", "closed")]
    assert events[-1].name == "closed"
    assert events[-1].data["status"] == "awaiting_response"
    assert events[-1].data["signature_count"] == THRESHOLD
    resumed = await client.get(
        live_url(petition["id"]), headers={"Last-Event-ID": str(events[-1].id)}
    )
    assert resumed.status == 204


async def test_a_closed_petition_streams_its_final_event_and_ends(
    make_client, approved_petition, sign_by
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    petition = await approved_petition(client)
    await sign_by(client, petition["id"], range(1, THRESHOLD + 1))

    reader = await open_stream(client, petition["id"])

    names = [e.name for e in await reader.rest()]
    assert names == ["message", "closed"]


@pytest.mark.parametrize("petition_id", ["in-moderation", "no-such-petition"])
async def test_a_petition_in_moderation_or_unknown_has_no_stream(
    make_client, file_petition, petition_id
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    if petition_id == "in-moderation":
        petition_id = (await file_petition(client))["id"]

    response = await client.get(live_url(petition_id))

    assert response.status == 404
    assert client.app[STATE].live.open == 0
    assert client.app[STATE].live.topics == {}


async def test_counts_seen_by_a_watcher_never_go_down(make_client, approved_petition, sign) -> None:
    client = await make_client(kazakhstan=thresholds(1_000), petitions=FAST)
    petition = await approved_petition(client)
    reader = await open_stream(client, petition["id"])
    hub = client.app[STATE].live
    topic = hub.topics[petition["id"]]

    await asyncio.gather(*(sign(client, petition["id"], n) for n in range(1, 31)))
    # A late message from another instance carries an older count: it must not be sent.
    hub.offer(topic, 3, topic.status, None)

    counts = []
    while not counts or counts[-1] < 30:
        event = await reader.next_named("count")
        assert event is not None
        counts.append(event.data["signature_count"])
    assert counts[0] == 0
    assert counts[-1] == 30
    assert counts == sorted(counts)
    assert len(set(counts)) == len(counts)


async def test_heartbeats_keep_an_idle_stream_alive(make_client, approved_petition) -> None:
    client = await make_client(
        kazakhstan=SMALL_THRESHOLDS, petitions={**FAST, "live_heartbeat_seconds": 0.2}
    )
    petition = await approved_petition(client)
    reader = await open_stream(client, petition["id"])
    await reader.next_named("count")

    heartbeat = await reader.next(within=2.0)

    assert heartbeat is not None
    assert heartbeat.name == "comment"
    assert heartbeat.comments == ["heartbeat"]


async def test_a_stream_ends_at_its_lifetime_so_its_client_resumes(
    make_client, approved_petition
) -> None:
    client = await make_client(
        kazakhstan=SMALL_THRESHOLDS, petitions={**FAST, "live_max_seconds": 0.3}
    )
    petition = await approved_petition(client)
    reader = await open_stream(client, petition["id"])
    first = await reader.next_named("count")

    # Idle (no heartbeat due for 15 s): only the lifetime can end it, well within 3 s.
    rest = [event async for event in _until_end(reader, within=3.0)]

    assert first.id == 0
    assert all(event.name != "count" for event in rest)
    assert (
        client.app[observability_keys.METRICS].registry.get_sample_value("qatysu_live_streams")
        == 0.0
    )


async def _until_end(reader: EventReader, *, within: float) -> Any:
    while (event := await reader.next(within=within)) is not None:
        yield event


async def test_open_streams_are_counted_in_the_gauge(make_client, approved_petition) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    petition = await approved_petition(client)
    gauge = client.app[observability_keys.METRICS].live_streams

    reader = await open_stream(client, petition["id"])
    await reader.next_named("count")
    assert gauge._value.get() == 1
    reader.response.close()
    for _ in range(50):
        if gauge._value.get() == 0:
            break
        await asyncio.sleep(0.05)
    assert gauge._value.get() == 0


async def test_head_answers_the_stream_headers_without_holding_a_stream(
    make_client, approved_petition
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    petition = await approved_petition(client)

    response = await client.head(live_url(petition["id"]))

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert client.app[STATE].live.open == 0


class FakeTransport:
    def __init__(self, buffered: int) -> None:
        self.buffered = buffered
        self.written: list[bytes] = []

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)


async def test_a_count_is_written_once_rendered_to_caught_up_sockets_and_a_slow_one_is_woken(
    make_client, approved_petition
) -> None:
    client = await make_client(kazakhstan=SMALL_THRESHOLDS, petitions=FAST)
    petition = await approved_petition(client)
    hub = client.app[STATE].live
    topic = await hub.topic(petition["id"])
    quick, slow = FakeTransport(0), FakeTransport(DIRECT_WRITE_LIMIT)
    subscribers = [Subscriber(quick, topic.sent_id), Subscriber(slow, topic.sent_id)]
    for subscriber in subscribers:
        subscriber.ready = True
        topic.subscribers.add(subscriber)

    hub.offer(topic, 7, Status.RESTRICTED, None)
    hub._flush(topic)

    assert quick.written == [chunk(topic.count_frame)]
    assert b'"signature_count":7' in topic.count_frame
    assert subscribers[0].sent == event_id(7, Status.RESTRICTED)
    assert not subscribers[0].wakeup.is_set()
    assert slow.written == []
    assert subscribers[1].wakeup.is_set()
    hub.release(topic)


async def test_new_region_counts_are_written_once_rendered_to_caught_up_sockets(
    make_client, approved_petition
) -> None:
    client = await make_client(petitions=FAST)
    petition = await approved_petition(client)
    hub = client.app[STATE].live
    topic = await hub.topic(petition["id"])
    quick, slow = FakeTransport(0), FakeTransport(DIRECT_WRITE_LIMIT)
    subscribers = [Subscriber(quick, topic.sent_id), Subscriber(slow, topic.sent_id)]
    for subscriber in subscribers:
        subscriber.ready = True
        topic.subscribers.add(subscriber)
    topic.regions_frame = b"event: regions\ndata: {}\n\n"
    topic.regions_version += 1

    hub._send_regions(topic)

    assert quick.written == [chunk(topic.regions_frame)]
    assert subscribers[0].regions_seen == topic.regions_version
    assert not subscribers[0].wakeup.is_set()
    assert slow.written == []
    assert subscribers[1].wakeup.is_set()
    hub.release(topic)


async def test_a_heartbeat_is_written_to_idle_streams_and_skipped_where_a_count_just_went(
    make_client, approved_petition
) -> None:
    client = await make_client(petitions=FAST)
    petition = await approved_petition(client)
    hub = client.app[STATE].live
    topic = await hub.topic(petition["id"])
    socket = FakeTransport(0)
    subscriber = Subscriber(socket, topic.sent_id)
    subscriber.ready = True
    topic.subscribers.add(subscriber)
    now = time.monotonic()

    topic.last_flush = now - 2 * hub.settings.live_heartbeat_seconds
    hub._beat(now)
    topic.last_flush = now
    hub._beat(now)

    assert socket.written == [chunk(HEARTBEAT)]
    assert subscriber.heartbeat_seen == hub.heartbeat_version
    assert not subscriber.wakeup.is_set()
    hub.release(topic)
