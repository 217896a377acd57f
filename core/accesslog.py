"""One access-log line per request, with the request id and no credentials or personal data."""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from core import keys


class AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        request_id = request.get(keys.REQUEST_ID, "-")
        self.logger.info(
            '%s "%s %s" %d %.1fms id=%s',
            request.remote,
            request.method,
            request.rel_url.path,
            response.status,
            time * 1000,
            request_id,
        )
