"""Shedding at the edge: refuse a share of non-critical requests before aiohttp parses them.

Under a flood the event loop itself becomes the queue: a request waits to be parsed before any
middleware can see it, and a 503 rendered by the full middleware stack costs a good part of
what serving a cached read costs. So refusals must be cheaper than that. The connection guard
asks ``EdgeShedder`` about each whole bodiless request head, before the fast lane (whose
answer costs about twice a refusal), and answers a refused one with canned bytes on the raw
transport.

The share refused is the PIE probability that admission computes from measured delay
(``core.admission.pie``); the observer sets ``probability`` every tick. Critical work
(signatures, submissions, agency answers) is never refused here; the admission controller
decides about it. Sheddable work is refused twice as often as normal work. Admission hands the
shedder to the guard (``ConnectionGuard.attach_edge``); the shedder counts its own refusals.

Two more refusals come from the kernel's queue and from storage:

* while a wait stands in the kernel's queue (``kernel_queue_standing``, set by the observer
  from ``core.admission.kernel.StandingWait``), a new connection's first request that already
  waited longer than ``age_target`` there (read at accept) is refused whatever the
  probability: it has spent its share of the SLO in a queue nobody else could see, and serving
  it late would make the next one later still. A burst, or a moment the process was throttled,
  raises some ages without a standing wait, and refuses nothing. Critical work is refused by
  age only past ``critical_age``;
* while the writer or the critical class is saturated (``writes_saturated``, set by the
  observer every tick) a critical write is refused here, at the cost of a read's refusal,
  instead of after aiohttp has parsed it and triage has looked at it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from core.plugin_host.priority import Priority

if TYPE_CHECKING:
    from core.plugin_host.routing import RouteSpec

_READ_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS"})
_PATH_PARAMETER = re.compile(r"\{[^}]+\}")
_CACHE_LIMIT = 4096


def route_pattern(path: str) -> re.Pattern[bytes]:
    parts = _PATH_PARAMETER.split(path)
    pattern = "[^/]+".join(re.escape(part) for part in parts)
    return re.compile(f"^{pattern}$".encode())


class EdgeShedder:
    """Decides, from the request line alone, whether to refuse a request at the edge."""

    def __init__(
        self,
        routes: Iterable[RouteSpec],
        *,
        random_draw: Callable[[], float] = random.random,
        on_refused: Callable[[Priority], None] = lambda priority: None,
        age_target: float | None = None,
        critical_age: float | None = None,
        on_aged: Callable[[Priority], None] = lambda priority: None,
    ) -> None:
        self.probability = 0.0
        self.writes_saturated = False
        self.kernel_queue_standing = False
        self.age_target = age_target
        self.critical_age = critical_age
        self._on_aged = on_aged
        self.draw = random_draw
        self._on_refused = on_refused
        self._routes: list[tuple[bytes, re.Pattern[bytes], Priority | None]] = [
            (
                spec.method.encode(),
                route_pattern(spec.path),
                None if spec.policy.bypass else spec.policy.priority,
            )
            for spec in routes
        ]
        self._classified: dict[bytes, Priority | None] = {}

    def classify(self, method: bytes, path: bytes) -> Priority | None:
        """The route's priority, or None for routes never refused here (operations)."""
        key = method + b" " + path
        if key in self._classified:
            return self._classified[key]
        priority: Priority | None = Priority.SHEDDABLE  # unknown paths are the first to go
        for route_method, pattern, route_priority in self._routes:
            if route_method == method and pattern.match(path):
                priority = route_priority
                break
        if len(self._classified) >= _CACHE_LIMIT:
            self._classified.clear()
        self._classified[key] = priority
        return priority

    def _classify_head(self, head: bytes) -> tuple[bytes, Priority | None]:
        """The method and the route's priority of the request ``head`` starts with."""
        line_end = head.find(b"\r\n")
        method, _, rest = head[:line_end].partition(b" ")
        if method == b"HEAD":
            method = b"GET"  # answered by the GET route's handler, with its priority
        target = rest.rpartition(b" ")[0]
        path = target.partition(b"?")[0]
        return method, self.classify(method, path)

    def refuse(self, head: bytes) -> Priority | None:
        """The priority of a request to refuse now, or None to let it through."""
        method, priority = self._classify_head(head)
        if priority is None:
            return None
        if priority is Priority.CRITICAL:
            if not self.writes_saturated or method in _READ_METHODS:
                return None
            self._on_refused(priority)
            return priority
        share = self.probability if priority is Priority.NORMAL else min(1.0, 2 * self.probability)
        if self.draw() >= share:
            return None
        self._on_refused(priority)
        return priority

    def refuse_aged(self, head: bytes, age: float) -> Priority | None:
        """The priority of a new connection's first request to refuse because it waited ``age``
        seconds in the kernel before the process took it, or None to let it through."""
        target = self.age_target
        if target is None or age <= target or not self.kernel_queue_standing:
            return None
        _, priority = self._classify_head(head)
        if priority is None:
            return None
        critical_age = self.critical_age
        if priority is Priority.CRITICAL and (critical_age is None or age <= critical_age):
            return None
        self._on_aged(priority)
        return priority
