"""Back-off from a failing backend: after a failure, leave it alone for a while."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# As the shared rate limiter (core.admission.ratelimit_redis.FallbackRateLimiter): a dead
# backend costs one failed call per second, not one per request.
RETRY_INTERVAL = 1.0


class Backoff:
    """Keeps a failing backend out of the path for ``retry_interval`` seconds after each failure.

    Its user asks ``waiting`` before a call (True: go straight to the fallback) and reports the
    call's outcome. An outage is logged once when it starts and once when it ends, not per call.
    """

    def __init__(
        self,
        backend: str,
        purpose: str,
        *,
        retry_interval: float = RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._purpose = purpose
        self._retry_interval = retry_interval
        self._clock = clock
        self._retry_at = float("-inf")
        self._down = False

    @property
    def waiting(self) -> bool:
        return self._clock() < self._retry_at

    def failed(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + self._retry_interval
        if not self._down:
            self._down = True
            log.warning(
                "%s unavailable for %s (%s); using the fallback, and trying again every %g s",
                self._backend,
                self._purpose,
                exc,
                self._retry_interval,
            )

    def succeeded(self) -> None:
        if self._down:
            self._down = False
            log.info("%s answers again for %s", self._backend, self._purpose)
