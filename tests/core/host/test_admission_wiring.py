"""Admission's connections for the app's lifetime: limiter, edge, and the loop-lag probe."""

from __future__ import annotations

import time
from typing import Any

import pytest

from core.admission import keys as admission_keys
from core.admission.ratelimit_redis import FallbackRateLimiter
from core.http import keys as http_keys
from core.observability import keys as observability_keys
from core.plugin_host.priority import Priority

ADMISSION = {"enabled": True}


async def test_without_redis_the_local_limiter_answers(make_client: Any) -> None:
    client = await make_client(admission=ADMISSION)
    admission = client.app[admission_keys.ADMISSION]
    assert admission.limiter is admission.local_limiter


@pytest.mark.redis
async def test_with_redis_configured_limits_go_through_redis_with_a_local_fallback(
    make_client: Any, redis_url: str
) -> None:
    client = await make_client(admission=ADMISSION, redis={"url": redis_url})
    assert isinstance(client.app[admission_keys.ADMISSION].limiter, FallbackRateLimiter)


async def test_the_edge_is_attached_to_the_guard_and_counts_its_refusals(
    make_client: Any,
) -> None:
    client = await make_client(admission=ADMISSION)
    edge = client.app[http_keys.GUARD].edge
    assert edge is not None
    assert edge is client.app[admission_keys.ADMISSION].edge
    edge.probability, edge.draw = 1.0, lambda: 0.0
    assert edge.refuse(b"GET /api/v1/petitions/x HTTP/1.1\r\nHost: t\r\n\r\n") is Priority.NORMAL
    assert (
        client.app[observability_keys.METRICS].registry.get_sample_value(
            "qatysu_admission_rejected_total", {"reason": "edge", "priority": "normal"}
        )
        == 1.0
    )


async def test_with_edge_shedding_off_no_edge_is_attached(make_client: Any) -> None:
    client = await make_client(admission={**ADMISSION, "edge_shedding": False})
    assert client.app[http_keys.GUARD].edge is None
    assert client.app[admission_keys.ADMISSION].edge is None


async def test_the_observer_reads_the_probe_until_the_app_stops(make_client: Any) -> None:
    client = await make_client(admission=ADMISSION)
    admission = client.app[admission_keys.ADMISSION]
    probe = client.app[http_keys.LOOP_LAG]
    probe.deliver(time.monotonic(), 0.5)
    running = admission.pie.probability
    await client.close()
    probe.deliver(time.monotonic(), 0.5)
    assert running > 0.0
    assert admission.pie.probability == running
