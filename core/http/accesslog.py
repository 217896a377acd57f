"""One access-log line per request, with the request id and no credentials or personal data.

The address logged is the client's as admission resolves it: the forwarding header is believed
only from a trusted proxy (``server.trusted_proxies``), and an IPv6 client shows as its network
(``server.ipv6_client_prefix``), the unit its rate limits count.
"""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, Request, StreamResponse

from core import keys
from core.admission.clients import (
    ClientAddressing,
    address_behind_proxies,
    client_addressing,
    parse_address,
)
from core.http import keys as http_keys


class AccessLogger(AbstractAccessLogger):
    _addressing: ClientAddressing | None = None

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        request_id = request.get(http_keys.REQUEST_ID, "-")
        client = self.client(request)
        self.logger.info(
            '%s "%s %s" %d %.1fms id=%s',
            client,
            request.method,
            request.rel_url.path,
            response.status,
            time * 1000,
            request_id,
            extra={
                "client": client,
                "method": request.method,
                "path": request.rel_url.path,
                "status": response.status,
                "duration_ms": round(time * 1000, 1),
                "request_id": request_id,
            },
        )

    def client(self, request: BaseRequest) -> str:
        """The client's address, from the trusted forwarding header when a proxy sent it."""
        if self._addressing is None:
            # Only an app's request knows the settings; a bare one trusts no proxy.
            self._addressing = (
                client_addressing(request.app[keys.SETTINGS].server)
                if isinstance(request, Request)
                else ClientAddressing()
            )
        return address_behind_proxies(
            parse_address(request.remote) if request.remote else None,
            request.headers.getall("Forwarded", ()),
            request.headers.getall("X-Forwarded-For", ()),
            self._addressing,
        )
