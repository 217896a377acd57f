"""Who a request comes from, for per-client rate limits.

The key is the citizen's keyed hash on authenticated requests, and the client address
otherwise. Forwarding headers are believed only when the peer is a configured trusted proxy,
and only the one header those proxies set (``server.forwarded_header``): believing the other
would let a client pick a fresh address, and so a fresh rate-limit bucket, per request.

Behind trusted proxies the chain is walked from the right: each proxy appends the address it
saw, so the rightmost address that is not a trusted proxy is the last one a trusted proxy
wrote, and anything to its left was written by the client. IPv4-mapped IPv6 addresses
(``::ffff:a.b.c.d``) are read as IPv4, so IPv4 proxy ranges match them. An IPv6 client is keyed
by its network (``server.ipv6_client_prefix``, /64 by default): one host is usually given a whole
/64, and keying by the full address would give it 2^64 buckets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import asyncio

    from aiohttp import web

    from core.identity.identities import Identity
    from core.settings import ServerSettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ForwardedHeader = Literal["x-forwarded-for", "forwarded"]


# Addresses remembered per ClientAddressing; past this many the memo starts again, so a flood
# of made-up forwarding headers cannot grow it.
_MAX_REMEMBERED = 4096
_Seen = tuple[str | None, tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientAddressing:
    """How a client's address is found: trusted proxies, their header, and the IPv6 prefix.

    It remembers the addresses it has worked out (``client_address``): parsing and reducing an
    address costs microseconds, and a client sends many requests.
    """

    trusted: tuple[Network, ...] = ()
    header: ForwardedHeader = "x-forwarded-for"
    ipv6_prefix: int = 64
    remembered: dict[_Seen, str] = field(default_factory=dict, compare=False, repr=False)


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(_unmapped_network(ipaddress.ip_network(cidr, strict=False)) for cidr in cidrs)


def client_addressing(server: ServerSettings) -> ClientAddressing:
    return ClientAddressing(
        trusted=parse_networks(server.trusted_proxies),
        header=server.forwarded_header,
        ipv6_prefix=server.ipv6_client_prefix,
    )


def _unmapped_network(network: Network) -> Network:
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    return network


def parse_address(text: str) -> IPAddress | None:
    """An address from a header or a peer name: quotes, brackets and a port allowed."""
    text = text.strip().strip('"')
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_chain(forwarded: Sequence[str]) -> list[str]:
    """The ``for=`` values of the ``Forwarded`` header lines, left to right."""
    chain: list[str] = []
    for header in forwarded:
        for element in header.split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.strip().lower() == "for":
                    chain.append(value)
    return chain


def x_forwarded_for_chain(x_forwarded_for: Sequence[str]) -> list[str]:
    """The addresses of the ``X-Forwarded-For`` header lines, left to right."""
    chain: list[str] = []
    for header in x_forwarded_for:
        chain.extend(part for part in header.split(",") if part.strip())
    return chain


def _is_trusted(address: IPAddress, trusted: tuple[Network, ...]) -> bool:
    return any(address in network for network in trusted)


def is_trusted_proxy(address: IPAddress, addressing: ClientAddressing) -> bool:
    """Whether ``address`` is one of the configured trusted proxies."""
    return _is_trusted(address, addressing.trusted)


def peer_address(transport: asyncio.BaseTransport | None) -> IPAddress | None:
    peer_name = transport.get_extra_info("peername") if transport is not None else None
    return parse_address(peer_name[0]) if peer_name else None


def client_ip(
    peer: IPAddress | None,
    forwarded: Sequence[str],
    x_forwarded_for: Sequence[str],
    addressing: ClientAddressing,
) -> IPAddress | None:
    """The rightmost address that is not a trusted proxy, or None without a peer."""
    if peer is None or not _is_trusted(peer, addressing.trusted):
        return peer
    chain = (
        forwarded_chain(forwarded)
        if addressing.header == "forwarded"
        else x_forwarded_for_chain(x_forwarded_for)
    )
    current = peer
    for hop in reversed(chain):
        address = parse_address(hop)
        if address is None:
            # A trusted proxy passed on something unreadable: nothing to its left can be
            # believed, so the client is the last address a trusted hop vouched for.
            break
        current = address
        if not _is_trusted(address, addressing.trusted):
            break
    return current


def address_behind_proxies(
    peer: IPAddress | None,
    forwarded: Sequence[str],
    x_forwarded_for: Sequence[str],
    addressing: ClientAddressing,
) -> str:
    """The client's address as a rate-limit key: IPv6 reduced to its configured prefix."""
    address = client_ip(peer, forwarded, x_forwarded_for, addressing)
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and addressing.ipv6_prefix < 128:
        return str(ipaddress.IPv6Network(f"{address}/{addressing.ipv6_prefix}", strict=False))
    return str(address)


def client_address(request: web.Request, addressing: ClientAddressing) -> str:
    """The client's address for ``request``: see ``address_behind_proxies``."""
    transport = request.transport
    peer_name = transport.get_extra_info("peername") if transport is not None else None
    headers = request.headers
    seen: _Seen = (
        peer_name[0] if peer_name else None,
        tuple(headers.getall("Forwarded", ())),
        tuple(headers.getall("X-Forwarded-For", ())),
    )
    remembered = addressing.remembered
    address = remembered.get(seen)
    if address is None:
        if len(remembered) >= _MAX_REMEMBERED:
            remembered.clear()
        peer = parse_address(seen[0]) if seen[0] is not None else None
        address = remembered[seen] = address_behind_proxies(peer, seen[1], seen[2], addressing)
    return address


def holder_key(identity: Identity) -> str:
    """The key of a verified token's holder: a citizen, or an official of one role."""
    return f"{identity.role}:{identity.subject}"


def client_key(
    request: web.Request, identity: Identity | None, addressing: ClientAddressing
) -> str:
    if identity is not None:
        return holder_key(identity)
    return f"addr:{client_address(request, addressing)}"
