"""Where ``/metrics`` is exposed: on the API port, on a port of its own, or behind a token.

Metrics say how loaded the server is and which routes fail, which helps an attacker time a
flood. ``metrics.exposure`` picks one of three:

- ``same_port``: ``GET /metrics`` on the API port, open to whoever reaches it (the default,
  for a private network or a proxy that blocks the path);
- ``separate_port``: only on ``metrics.host:metrics.port`` (the Prometheus convention), so a
  firewall can keep it private; with several workers each binds it with ``SO_REUSEPORT`` and
  any of them answers with the aggregate;
- ``bearer_token``: on the API port, with ``Authorization: Bearer <metrics.bearer_token>``.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from core import keys
from core.observability import keys as observability_keys
from core.wire.errors import Unauthorized


async def metrics_handler(request: web.Request) -> web.Response:
    body = request.app[observability_keys.METRICS].exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def guarded_metrics_handler(request: web.Request) -> web.Response:
    """``/metrics`` for a caller that shows the configured bearer token."""
    expected = request.app[keys.SETTINGS].metrics.bearer_token
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        raise Unauthorized("/metrics needs the metrics bearer token")
    return await metrics_handler(request)


async def metrics_port_ctx(app: web.Application) -> AsyncIterator[None]:
    """Serve ``/metrics`` alone on the metrics port, for as long as the app runs."""
    settings = app[keys.SETTINGS].metrics
    metrics_app = web.Application()
    metrics_app[observability_keys.METRICS] = app[observability_keys.METRICS]
    metrics_app.router.add_get("/metrics", metrics_handler)
    runner = web.AppRunner(metrics_app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=True)
    await site.start()
    app[observability_keys.METRICS_PORT] = _bound_port(site, settings.port)
    yield
    await runner.cleanup()


def _bound_port(site: web.TCPSite, configured: int) -> int:
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        port: int = server.sockets[0].getsockname()[1]
        return port
    return configured
