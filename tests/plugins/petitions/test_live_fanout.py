"""Live counts across two app instances: through the real Redis, and by polling without it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from core.observability import keys as observability_keys
from core.plugin_host import keys as plugin_host_keys
from tests.support.live import EventReader
from tests.support.petitions import SMALL_FIGURES, petition_url, thresholds

if TYPE_CHECKING:
    from tests.support.admission import RedisServerProcess


FIGURES = {**SMALL_FIGURES, "live_interval_seconds": 0.2}


async def two_instances(make_client: Any, database_url: str, redis_url: str) -> list[Any]:
    redis = {"url": redis_url, "key_prefix": f"test-{uuid.uuid4().hex}:"}
    return [
        await make_client(
            database_url, kazakhstan=thresholds(1_000), petitions=FIGURES, redis=redis
        )
        for _ in range(2)
    ]


async def watch(client: Any, petition_id: str) -> EventReader:
    response = await client.get(petition_url(petition_id, "/live"))
    assert response.status == 200, await response.text()
    return EventReader(response)


async def test_a_signature_on_one_instance_reaches_watchers_of_the_other_through_redis(
    make_client, database_url, redis_url, approved_petition, sign_by
) -> None:
    signer, watcher = await two_instances(make_client, database_url, redis_url)
    petition = await approved_petition(signer)
    reader = await watch(watcher, petition["id"])
    assert (await reader.next_named("count")).data["signature_count"] == 0

    await sign_by(signer, petition["id"], [1])
    first = await reader.next_named("count")
    await sign_by(signer, petition["id"], [2, 3])
    later = await reader.next_named("count")

    assert first.data["signature_count"] == 1
    assert later.data["signature_count"] == 3
    published = signer.app[plugin_host_keys.FANOUT].published
    # Every message crossed once to each instance, whatever the number of watchers.
    assert watcher.app[plugin_host_keys.FANOUT].received == published
    assert signer.app[plugin_host_keys.FANOUT].received == published
    assert 2 <= published <= 3


async def test_with_redis_lost_watchers_are_told_and_counts_come_by_polling(
    make_client, database_url, approved_petition, sign_by, redis_server: RedisServerProcess
) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    signer, watcher = await two_instances(make_client, database_url, url)
    petition = await approved_petition(signer)
    reader = await watch(watcher, petition["id"])
    assert (await reader.next_named("count")).data["signature_count"] == 0

    await redis_server.kill()
    degraded = await reader.next_named("degraded")
    await sign_by(signer, petition["id"], [1, 2])
    counts = [0]
    while counts[-1] < 2:
        counts.append((await reader.next_named("count")).data["signature_count"])

    assert degraded.data == {"degraded": True, "polling_interval": 0.2}
    assert counts in ([0, 1, 2], [0, 2])
    assert watcher.app[observability_keys.METRICS].fanout_fallbacks._value.get() == 1
