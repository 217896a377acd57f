"""Caps on the requests one client has in progress at once, as nginx's ``limit_conn`` and
HAProxy's ``sc_conn_cur`` cap connections.

A rate limit bounds how often a client starts requests, not how many it holds: a client whose
requests are slow (it sends their bodies slowly, or asks for slow work) could otherwise hold any
share of the server. Each request counts against its address (behind trusted proxies the
forwarded one, as the rate limit keys it) and, with a verified token, against its holder, from
admission until its answer. Past either cap the answer is 429. A cap of 0 is no cap.

Counts are per process, as the concurrency limit is: N instances allow N times the cap.
"""

from __future__ import annotations

from typing import Literal

from core.errors import TooManyRequests

CapKind = Literal["address", "citizen"]

_DETAILS: dict[CapKind, str] = {
    "address": "too many requests from this address are in progress; wait for one to finish",
    "citizen": "too many requests of this account are in progress; wait for one to finish",
}


class TooManyInFlight(TooManyRequests):
    """A client past its cap on requests in progress."""

    def __init__(self, kind: CapKind) -> None:
        super().__init__(_DETAILS[kind], headers={"Retry-After": "1"})
        self.kind: CapKind = kind


class Seat:
    """One request's place in its client's counts; ``release()`` gives it back, once."""

    __slots__ = ("_address", "_holder", "_inflight")

    def __init__(self, inflight: InFlight, address: str | None, holder: str | None) -> None:
        self._inflight: InFlight | None = inflight
        self._address = address
        self._holder = holder

    def release(self) -> None:
        inflight = self._inflight
        if inflight is not None:
            self._inflight = None
            inflight._leave(self._address, self._holder)


class InFlight:
    """Requests in progress per address and per token holder, with their caps."""

    def __init__(self, *, per_address: int, per_citizen: int) -> None:
        self.per_address = per_address
        self.per_citizen = per_citizen
        self._addresses: dict[str, int] = {}
        self._holders: dict[str, int] = {}

    def count(self, *, address: str | None = None, holder: str | None = None) -> int:
        """Requests in progress for ``address`` or ``holder`` (for tests and metrics)."""
        if address is not None:
            return self._addresses.get(address, 0)
        return self._holders.get(holder, 0) if holder is not None else 0

    def take(self, address: str | None, holder: str | None) -> Seat:
        """A seat for one request of ``address`` (and ``holder``, with a token); raises
        ``TooManyInFlight`` when either is at its cap. None skips that count."""
        if address is not None and self._addresses.get(address, 0) >= self.per_address > 0:
            raise TooManyInFlight("address")
        if holder is not None and self._holders.get(holder, 0) >= self.per_citizen > 0:
            raise TooManyInFlight("citizen")
        if address is not None:
            self._addresses[address] = self._addresses.get(address, 0) + 1
        if holder is not None:
            self._holders[holder] = self._holders.get(holder, 0) + 1
        return Seat(self, address, holder)

    def _leave(self, address: str | None, holder: str | None) -> None:
        if address is not None:
            _decrement(self._addresses, address)
        if holder is not None:
            _decrement(self._holders, holder)


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        # An idle client leaves nothing behind: a flood of addresses cannot grow the table.
        del counts[key]
