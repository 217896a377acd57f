"""Routes as channels declare them, and the table that makes each declaration the enforcement.

A route is declared once, beside its handler, in the style of aiohttp's ``RouteTableDef``::

    routes = Routes("/api/v1/petitions", tags=("petitions",))

    @routes.post("", name="petitions.create", summary="File a petition", policy=FILE,
                 roles=Role.CITIZEN, body=PetitionCreate, responses={201: Petition})
    async def create_petition(
        request: web.Request, identity: Identity, body: PetitionCreate
    ) -> web.Response: ...

What is declared is what happens, in this order, before the handler runs:

1. ``roles``: 401 without a token, 403 with a role outside them; the handler's ``identity``
   is then the caller. A route without roles is public and its ``identity`` is the caller or
   None. No handler checks a role itself.
2. ``idempotent``: a create that honours ``Idempotency-Key`` (``core.plugin_host.idempotency``).
3. ``query`` and ``body``: the query string and the JSON body, validated into their models
   (422 naming each bad field) and handed to the handler as ``query`` and ``body``.
4. ``query_roles``: a wider view that only some roles may ask for (hidden comments, petitions
   still in moderation), checked once the query is parsed.

The handler's parameters are checked against the declaration when it is declared, so a
handler cannot ask for a body that is not declared, or forget one that is. With
``server.validate_responses`` on (the tests run with it), every JSON answer whose status
declares a model is validated against it. The OpenAPI document is generated from the same
declarations (``core.http.openapi``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import ValidationError

from core.identity import keys as identity_keys
from core.identity.identities import Role
from core.identity.tokens import ensure_role
from core.plugin_host.idempotency import idempotent
from core.plugin_host.priority import Priority, RatePolicy
from core.wire.bodies import query_model, read_model

if TYPE_CHECKING:
    from pydantic import BaseModel

    from core.identity.identities import Identity
    from core.wire.errors import Problem

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]
DeclaredHandler = Callable[..., Awaitable["web.StreamResponse"]]


@dataclass(frozen=True, slots=True)
class Document:
    """An answer that is not JSON (a CSV export): what it is, and its media type."""

    description: str
    media_type: str


Responses = dict[int, "type[BaseModel] | str | Document"]

# What a declared handler may ask for, beyond the request.
ARGUMENTS = frozenset({"identity", "body", "query"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutePolicy:
    """How admission treats a route: its priority class, per-client budget and deadline.

    ``rate`` is the budget for one client (a citizen, or an address when anonymous); operators
    override it by the policy's name in ``[admission.rate_overrides]``. ``bypass`` is for
    operations routes, which must answer even when everything else is shed. ``stream`` is for
    long-lived answers (server-sent events): rate-limited, but holding no concurrency slot and
    no in-flight seat, since a watcher may stay for hours; the handler bounds them itself.
    """

    priority: Priority = Priority.NORMAL
    rate: RatePolicy | None = None
    deadline: float | None = None
    bypass: bool = False
    stream: bool = False


OPERATIONS = RoutePolicy(priority=Priority.CRITICAL, bypass=True)


def critical(name: str, rate: float, burst: int) -> RoutePolicy:
    """A write that must get through a flood, within a per-client budget."""
    return RoutePolicy(
        priority=Priority.CRITICAL, rate=RatePolicy(name=name, rate=rate, burst=burst)
    )


def normal(name: str, rate: float, burst: int) -> RoutePolicy:
    """A read of one resource: shed after the sheddable ones."""
    return RoutePolicy(priority=Priority.NORMAL, rate=RatePolicy(name=name, rate=rate, burst=burst))


def sheddable(name: str, rate: float, burst: int) -> RoutePolicy:
    """A list or a search: shed first, since a citizen can come back to it."""
    return RoutePolicy(
        priority=Priority.SHEDDABLE, rate=RatePolicy(name=name, rate=rate, burst=burst)
    )


def streaming(name: str, rate: float, burst: int) -> RoutePolicy:
    """A long-lived stream: refused first under overload, and holding no slot once open."""
    return RoutePolicy(
        priority=Priority.SHEDDABLE,
        rate=RatePolicy(name=name, rate=rate, burst=burst),
        stream=True,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryRoles:
    """Roles a query needs when it asks for more than the public sees.

    ``asks(query)`` says whether the parsed query asks for the wider view. ``refusal(query)``
    is the problem for a caller without one of ``roles``; without it, the caller gets the
    route's usual 401 (no token) or 403 (another role).
    """

    roles: frozenset[Role]
    asks: Callable[[Any], bool]
    description: str
    refusal: Callable[[Any], Problem] | None = None

    def check(self, identity: Identity | None, query: Any) -> None:
        if not self.asks(query) or (identity is not None and identity.role in self.roles):
            return
        if self.refusal is not None:
            raise self.refusal(query)
        ensure_role(identity, self.roles)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteSpec:
    method: str
    path: str
    handler: DeclaredHandler
    name: str
    summary: str
    policy: RoutePolicy
    roles: frozenset[Role] | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: Responses = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    idempotent: bool = False
    query_roles: tuple[QueryRoles, ...] = ()
    # The route's bearer token is its own, not a JWT (``/metrics`` behind its token).
    own_token: bool = False
    # The declared handler's parameters beyond the request, checked at declaration.
    arguments: frozenset[str] = frozenset()


class RouteDeclarationError(TypeError):
    """A handler whose parameters do not match its declaration."""


def _arguments(handler: DeclaredHandler, name: str, *, body: bool, query: bool) -> frozenset[str]:
    parameters = list(inspect.signature(handler).parameters)
    if not parameters:
        raise RouteDeclarationError(f"route {name!r}: the handler must take the request first")
    asked = frozenset(parameters[1:])
    unknown = asked - ARGUMENTS
    if unknown:
        raise RouteDeclarationError(
            f"route {name!r}: the handler asks for {sorted(unknown)}; "
            f"a handler may ask for {sorted(ARGUMENTS)}"
        )
    for argument, declared in (("body", body), ("query", query)):
        if declared and argument not in asked:
            raise RouteDeclarationError(f"route {name!r}: a {argument} is declared but not taken")
        if argument in asked and not declared:
            raise RouteDeclarationError(
                f"route {name!r}: the handler takes an undeclared {argument}"
            )
    return asked


def role_set(roles: Role | Iterable[Role] | None) -> frozenset[Role] | None:
    if roles is None:
        return None
    return frozenset({roles}) if isinstance(roles, Role) else frozenset(roles)


class Routes:
    """One channel's routes, declared with decorators beside their handlers."""

    def __init__(self, prefix: str = "", *, tags: tuple[str, ...] = ()) -> None:
        self.prefix = prefix
        self.tags = tags
        self._specs: list[RouteSpec] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        name: str,
        summary: str,
        policy: RoutePolicy,
        roles: Role | Iterable[Role] | None = None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        responses: Responses | None = None,
        tags: tuple[str, ...] | None = None,
        idempotent: bool = False,
        query_roles: QueryRoles | tuple[QueryRoles, ...] = (),
        own_token: bool = False,
    ) -> Callable[[DeclaredHandler], DeclaredHandler]:
        """Declare the decorated handler's route; an ``idempotent`` create honours
        ``Idempotency-Key``."""

        wider = (query_roles,) if isinstance(query_roles, QueryRoles) else query_roles
        if wider and query is None:
            raise RouteDeclarationError(f"route {name!r}: query_roles needs a declared query")

        def declare(handler: DeclaredHandler) -> DeclaredHandler:
            self._specs.append(
                RouteSpec(
                    method=method.upper(),
                    path=self.prefix + path,
                    handler=handler,
                    name=name,
                    summary=summary,
                    policy=policy,
                    roles=role_set(roles),
                    body=body,
                    query=query,
                    responses=dict(responses or {}),
                    tags=self.tags if tags is None else tags,
                    idempotent=idempotent,
                    query_roles=wider,
                    own_token=own_token,
                    arguments=_arguments(
                        handler, name, body=body is not None, query=query is not None
                    ),
                )
            )
            return handler

        return declare

    def get(self, path: str, **declaration: Any) -> Callable[[DeclaredHandler], DeclaredHandler]:
        """Declare a GET route; it answers HEAD as well."""
        return self.route("GET", path, **declaration)

    def post(self, path: str, **declaration: Any) -> Callable[[DeclaredHandler], DeclaredHandler]:
        """Declare a POST route."""
        return self.route("POST", path, **declaration)

    def put(self, path: str, **declaration: Any) -> Callable[[DeclaredHandler], DeclaredHandler]:
        """Declare a PUT route."""
        return self.route("PUT", path, **declaration)

    def delete(self, path: str, **declaration: Any) -> Callable[[DeclaredHandler], DeclaredHandler]:
        """Declare a DELETE route."""
        return self.route("DELETE", path, **declaration)

    def __iter__(self) -> Iterator[RouteSpec]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


class RouteRegistry:
    """Every route of the app, with its policy; the app mounts them and admission reads policies."""

    def __init__(self) -> None:
        self._routes: dict[str, RouteSpec] = {}

    def include(self, routes: Iterable[RouteSpec]) -> None:
        """Add a channel's declared routes; a route name may be declared once only."""
        for spec in routes:
            if spec.name in self._routes:
                raise ValueError(f"route name {spec.name!r} is registered twice")
            self._routes[spec.name] = spec

    def add(self, method: str, path: str, handler: DeclaredHandler, **declaration: Any) -> None:
        """Declare one route without a decorator (for routes built at run time); the same
        declaration, checks and enforcement as ``Routes.route``."""
        table = Routes()
        table.route(method, path, **declaration)(handler)
        self.include(table)

    def policy(self, name: str | None) -> RoutePolicy | None:
        spec = self._routes.get(name) if name else None
        return spec.policy if spec is not None else None

    def reads_body(self, name: str | None) -> bool:
        """Whether the route declares a body, which admission reads before giving it a slot."""
        spec = self._routes.get(name) if name else None
        return spec is not None and spec.body is not None

    def has_own_token(self, name: str | None) -> bool:
        """Whether the route's bearer token is its own, so no identity provider reads it."""
        spec = self._routes.get(name) if name else None
        return spec is not None and spec.own_token

    def __iter__(self) -> Iterator[RouteSpec]:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)


class ResponseMismatch(AssertionError):
    """An answer that does not match the model its route declares for that status."""


def endpoint(spec: RouteSpec, *, validate_responses: bool = False) -> Handler:
    """The aiohttp handler that enforces ``spec``'s declaration, then calls its handler."""
    handler = spec.handler
    wants_identity = "identity" in spec.arguments
    query_roles = spec.query_roles

    async def call(request: web.Request) -> web.StreamResponse:
        arguments: dict[str, Any] = {}
        if wants_identity:
            arguments["identity"] = request.get(identity_keys.IDENTITY)
        if spec.query is not None:
            query = arguments["query"] = query_model(request, spec.query)
            for wider in query_roles:
                wider.check(request.get(identity_keys.IDENTITY), query)
        if spec.body is not None:
            arguments["body"] = await read_model(request, spec.body)
        response = await handler(request, **arguments)
        if validate_responses:
            check_response(spec, response)
        return response

    inner: Handler = idempotent(call) if spec.idempotent else call
    roles = spec.roles
    if roles is None:
        return inner

    async def guarded(request: web.Request) -> web.StreamResponse:
        ensure_role(request.get(identity_keys.IDENTITY), roles)
        return await inner(request)

    return guarded


def check_response(spec: RouteSpec, response: web.StreamResponse) -> None:
    """Raise ``ResponseMismatch`` when a JSON answer does not fit the model declared for its
    status, or when a route that declares its answers gives another status."""
    if not isinstance(response, web.Response) or response.status == 304:
        return
    declared = spec.responses.get(response.status)
    if declared is None:
        if not spec.responses:
            return
        raise ResponseMismatch(f"route {spec.name!r} answered {response.status}, not declared")
    if isinstance(declared, str | Document) or response.content_type != "application/json":
        return
    body = response.body
    if not isinstance(body, bytes | bytearray):
        return
    try:
        declared.model_validate_json(body)
    except ValidationError as exc:
        raise ResponseMismatch(
            f"route {spec.name!r} answered {response.status} not matching "
            f"{declared.__name__}: {exc}"
        ) from None
