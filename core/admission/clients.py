"""Who a request comes from, for per-client rate limits.

The key is the citizen's keyed hash on authenticated requests, and the client address
otherwise. ``X-Forwarded-For`` and ``Forwarded`` are believed only when the peer is a
configured trusted proxy; a client cannot pick its own address by sending the header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from aiohttp import web

    from core.identity import Identity

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _address(text: str) -> IPAddress | None:
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def forwarded_chain(forwarded: Sequence[str], x_forwarded_for: Sequence[str]) -> list[str]:
    """The proxy chain from the ``Forwarded`` headers, else from ``X-Forwarded-For``."""
    chain: list[str] = []
    for header in forwarded:
        for element in header.split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    chain.append(value)
    if not chain:
        for header in x_forwarded_for:
            chain.extend(part for part in header.split(",") if part.strip())
    return chain


def peer_address(transport: asyncio.BaseTransport | None) -> IPAddress | None:
    peer_text = transport.get_extra_info("peername") if transport is not None else None
    return _address(peer_text[0]) if peer_text else None


def address_behind_proxies(
    peer: IPAddress | None, chain: Sequence[str], trusted: tuple[Network, ...]
) -> str:
    """The nearest address that is not a trusted proxy, walking the chain from the right."""
    if peer is None:
        return "unknown"
    if not trusted or not any(peer in net for net in trusted):
        return str(peer)
    current = peer
    for hop in reversed(chain):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not any(address in net for net in trusted):
            break
    return str(current)


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The client's address for ``request``: see ``address_behind_proxies``."""
    peer = peer_address(request.transport)
    if peer is None or not trusted:
        return "unknown" if peer is None else str(peer)
    chain = forwarded_chain(
        request.headers.getall("Forwarded", ()), request.headers.getall("X-Forwarded-For", ())
    )
    return address_behind_proxies(peer, chain, trusted)


def client_key(
    request: web.Request, identity: Identity | None, trusted: tuple[Network, ...]
) -> str:
    if identity is not None:
        return f"{identity.role}:{identity.subject}"
    return f"addr:{client_address(request, trusted)}"
