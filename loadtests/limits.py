"""The physical limit: the most goodput a design paying the measured costs could reach.

Under a flood every request that arrives costs the server CPU, served or not. If serving one
costs ``s`` CPU-seconds and refusing one costs at least ``r`` (the cheapest refusal measured), a
server with a budget of ``B`` CPU-seconds per second, offered ``λ`` requests per second, that
serves ``g`` of them and refuses the rest, needs

    g·s + (λ - g)·r ≤ B,   so   g ≤ (B - λ·r) / (s - r)   when s > r,

and never more than ``λ`` nor ``B / s``. The budget's capacity is ``C = B / s``; at ``k`` times it
(λ = k·C) the bound is ``g / C = (1 - k·r/s) / (1 - r/s)``: refusals eat into the budget as
fast as the flood grows. When ``λ·r > B`` even refusing everything is beyond the budget, and
some requests can only go unanswered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


def physical_limit(*, budget: float, offered: float, serve: float, refuse: float) -> float:
    """The highest goodput (requests/s) that serving at s and refusing at r allows (CPU-s)."""
    if budget <= 0 or offered < 0 or serve <= 0 or refuse < 0:
        raise ValueError("budget and serving cost must be positive, the others not negative")
    ceiling = min(offered, budget / serve)
    if refuse >= serve:
        return ceiling  # refusing is no cheaper than serving: serve what the budget allows
    return max(0.0, min(ceiling, (budget - offered * refuse) / (serve - refuse)))


def blended_cost(
    costs_by_kind: Mapping[str, float],
    shares: Mapping[str, float],
    *,
    connection_cost: float = 0.0,
    requests_per_connection: int = 0,
) -> float:
    """The mean cost of one request of a mix, with its share of a new connection's cost."""
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("the mix has no weight")
    mean = sum(costs_by_kind[kind] * share for kind, share in shares.items()) / total
    if requests_per_connection > 0:
        mean += connection_cost / requests_per_connection
    return mean


@dataclass(frozen=True, kw_only=True)
class LimitLine:
    """The bound at one multiple of capacity, with what it was computed from."""

    multiple: float
    offered: float
    limit: float
    capacity: float
    serve: float
    refuse: float
    budget: float

    @property
    def share_of_capacity(self) -> float:
        return self.limit / self.capacity if self.capacity else 0.0

    def text(self) -> str:
        return (
            f"at {self.multiple:g}x ({self.offered:,.0f}/s offered): at most"
            f" {self.limit:,.0f}/s = {100 * self.share_of_capacity:.0f}% of {self.capacity:,.0f}/s"
            f"  [(B - λr)/(s - r) with B={self.budget:g} CPU-s/s, s={self.serve * 1e3:.3f} ms,"
            f" r={self.refuse * 1e3:.3f} ms]"
        )


def limit_lines(
    *, budget: float, capacity: float, serve: float, refuse: float, multiples: tuple[float, ...]
) -> list[LimitLine]:
    return [
        LimitLine(
            multiple=k,
            offered=k * capacity,
            limit=physical_limit(budget=budget, offered=k * capacity, serve=serve, refuse=refuse),
            capacity=capacity,
            serve=serve,
            refuse=refuse,
            budget=budget,
        )
        for k in multiples
    ]
