"""Failed authentications count against the client's address.

A request with a bad token has no identity to be keyed by, so without this a client could send
bad tokens (guessed, forged, replayed) as fast as it likes and meet only 401s. Each failure is
charged to a budget of the client's address, shared through Redis when it is configured; past
it, the answer is 429 with ``Retry-After`` instead of 401. Valid tokens cost nothing here: the
budget is consulted only once a verification has failed. Its size is ``auth_failures`` in
``[admission.rate_overrides]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.admission import keys as admission_keys
from core.admission.clients import client_address
from core.admission.gcra import ratelimit_headers
from core.observability import keys as observability_keys
from core.plugin_host.priority import RatePolicy
from core.wire.errors import TooManyRequests

if TYPE_CHECKING:
    from aiohttp import web

AUTH_FAILURES = RatePolicy(name="auth_failures", rate=1.0, burst=20)


async def charge_failed_authentication(request: web.Request) -> None:
    """Charge one failure to the client's address; TooManyRequests once its budget is spent."""
    admission = request.app.get(admission_keys.ADMISSION)
    if admission is None or not admission.settings.ratelimit_enabled:
        return
    policy = admission.rate_for(AUTH_FAILURES)
    address = client_address(request, admission.trusted)
    decision = await admission.limiter.check(f"{policy.name}:addr:{address}", policy)
    if not decision.allowed:
        request.app[observability_keys.METRICS].ratelimit_limited.labels(policy.name).inc()
        headers = ratelimit_headers(policy, decision)
        raise TooManyRequests(
            "too many failed authentications from this address; retry after {seconds} s",
            headers=headers,
            params={"seconds": headers.get("Retry-After", "1")},
        )
