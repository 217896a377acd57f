"""Client keys: the citizen hash when authenticated, else the address; proxies trusted by config."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import make_mocked_request

from core.admission.clients import client_address, client_key, parse_networks
from core.identity import Identity, Role

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"])


class Peer:
    def __init__(self, host: str) -> None:
        self.host = host

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.host, 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


def request(peer: str, headers: dict[str, str] | None = None) -> Any:
    return make_mocked_request("GET", "/", headers=headers or {}, transport=Peer(peer))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() -> None:
    spoofed = request("203.0.113.7", {"X-Forwarded-For": "198.51.100.1"})
    assert client_address(spoofed, ()) == "203.0.113.7"


def test_a_header_from_an_untrusted_peer_is_ignored() -> None:
    spoofed = request("203.0.113.7", {"X-Forwarded-For": "198.51.100.1"})
    assert client_address(spoofed, PROXIES) == "203.0.113.7"


def test_behind_a_trusted_proxy_the_nearest_untrusted_hop_is_the_client() -> None:
    proxied = request("10.0.0.2", {"X-Forwarded-For": "198.51.100.1, 192.0.2.9, 10.0.0.5"})
    # 198.51.100.1 was written by the client itself and cannot be believed; 192.0.2.9 is the
    # address the first trusted proxy saw.
    assert client_address(proxied, PROXIES) == "192.0.2.9"


def test_the_forwarded_header_is_honoured_and_preferred() -> None:
    proxied = request(
        "10.0.0.2",
        {
            "Forwarded": 'for=192.0.2.60;proto=https, for="[2001:db8::17]:4711"',
            "X-Forwarded-For": "198.51.100.1",
        },
    )
    assert client_address(proxied, PROXIES) == "2001:db8::17"


def test_a_malformed_hop_stops_the_walk_at_the_last_good_address() -> None:
    proxied = request("10.0.0.2", {"X-Forwarded-For": "not-an-address, 10.0.0.9"})
    assert client_address(proxied, PROXIES) == "10.0.0.9"


def test_an_authenticated_client_is_keyed_by_identity_not_address() -> None:
    citizen = Identity(subject="a" * 64, role=Role.CITIZEN)
    assert client_key(request("203.0.113.7"), citizen, ()) == "citizen:" + "a" * 64
    assert client_key(request("203.0.113.7"), None, ()) == "addr:203.0.113.7"
