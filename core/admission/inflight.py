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

from core.wire.errors import TooManyRequests

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


class CappedCounts:
    """How many of something each key holds, up to ``cap`` each (0: no cap).

    A key that holds nothing is dropped, so a flood of keys cannot grow the table.
    """

    __slots__ = ("_held", "cap")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._held: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._held)

    def count(self, key: str) -> int:
        return self._held.get(key, 0)

    def full(self, key: str) -> bool:
        return 0 < self.cap <= self._held.get(key, 0)

    def add(self, key: str) -> None:
        self._held[key] = self._held.get(key, 0) + 1

    def remove(self, key: str) -> None:
        left = self._held[key] - 1
        if left:
            self._held[key] = left
        else:
            del self._held[key]


class InFlight:
    """Requests in progress per address and per token holder, with their caps."""

    def __init__(self, *, per_address: int, per_citizen: int) -> None:
        self.addresses = CappedCounts(per_address)
        self.holders = CappedCounts(per_citizen)

    @property
    def per_address(self) -> int:
        return self.addresses.cap

    @property
    def per_citizen(self) -> int:
        return self.holders.cap

    def take(self, address: str | None, holder: str | None) -> Seat:
        """A seat for one request of ``address`` (and ``holder``, with a token); raises
        ``TooManyInFlight`` when either is at its cap. None skips that count."""
        if address is not None and self.addresses.full(address):
            raise TooManyInFlight("address")
        if holder is not None and self.holders.full(holder):
            raise TooManyInFlight("citizen")
        if address is not None:
            self.addresses.add(address)
        if holder is not None:
            self.holders.add(holder)
        return Seat(self, address, holder)

    def _leave(self, address: str | None, holder: str | None) -> None:
        if address is not None:
            self.addresses.remove(address)
        if holder is not None:
            self.holders.remove(holder)
