"""Routes as plugins declare them: the handler, its admission policy and its documentation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.admission.priority import Priority, RatePolicy

if TYPE_CHECKING:
    from aiohttp import web
    from pydantic import BaseModel

    from core.identity import Role

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutePolicy:
    """How admission treats a route: its priority class, per-client budget and deadline.

    ``rate`` is the budget for one client (a citizen, or an address when anonymous); operators
    override it by the policy's name in ``[admission.rate_overrides]``. ``bypass`` is for
    operations routes, which must answer even when everything else is shed.
    """

    priority: Priority = Priority.NORMAL
    rate: RatePolicy | None = None
    deadline: float | None = None
    bypass: bool = False


OPERATIONS = RoutePolicy(priority=Priority.CRITICAL, bypass=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    policy: RoutePolicy
    roles: frozenset[Role] | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    idempotent: bool = False


class RouteRegistry:
    """Collects every route with its policy; the app mounts them and admission reads policies."""

    def __init__(self) -> None:
        self._routes: dict[str, RouteSpec] = {}

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        name: str,
        summary: str,
        policy: RoutePolicy,
        roles: frozenset[Role] | None = None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        responses: dict[int, type[BaseModel] | str] | None = None,
        tags: tuple[str, ...] = (),
        idempotent: bool = False,
    ) -> None:
        """Register a route; an ``idempotent`` create honours ``Idempotency-Key``."""
        if name in self._routes:
            raise ValueError(f"route name {name!r} is registered twice")
        self._routes[name] = RouteSpec(
            method=method.upper(),
            path=path,
            handler=handler,
            name=name,
            summary=summary,
            policy=policy,
            roles=roles,
            body=body,
            query=query,
            responses=dict(responses or {}),
            tags=tags,
            idempotent=idempotent,
        )

    def policy(self, name: str | None) -> RoutePolicy | None:
        spec = self._routes.get(name) if name else None
        return spec.policy if spec is not None else None

    def __iter__(self) -> Iterator[RouteSpec]:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)
