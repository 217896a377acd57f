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
    from aiohttp import web

    from core.identity import Identity

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _forwarded_chain(request: web.Request) -> list[str]:
    chain: list[str] = []
    for header in request.headers.getall("Forwarded", ()):
        for element in header.split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    chain.append(value)
    if not chain:
        for header in request.headers.getall("X-Forwarded-For", ()):
            chain.extend(part for part in header.split(",") if part.strip())
    return chain


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The nearest address that is not a trusted proxy, walking the chain from the right."""
    peer_text = request.transport.get_extra_info("peername") if request.transport else None
    peer = _address(peer_text[0]) if peer_text else None
    if peer is None:
        return "unknown"
    if not trusted or not any(peer in net for net in trusted):
        return str(peer)
    current = peer
    for hop in reversed(_forwarded_chain(request)):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not any(address in net for net in trusted):
            break
    return str(current)


def client_key(
    request: web.Request, identity: Identity | None, trusted: tuple[Network, ...]
) -> str:
    if identity is not None:
        return f"{identity.role}:{identity.subject}"
    return f"addr:{client_address(request, trusted)}"
