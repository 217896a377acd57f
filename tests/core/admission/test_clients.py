"""Client keys: the citizen hash when authenticated, else the address; proxies trusted by config.

Forwarding headers are believed only from trusted proxies, and only the one header they are
configured to set; the chain is read from the right, so what the client wrote itself is never
believed. IPv6 clients are keyed by their /64; IPv4-mapped addresses are read as IPv4.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from core.admission.clients import (
    ClientAddressing,
    client_address,
    client_addressing,
    client_key,
    parse_networks,
)
from core.identity.identities import Identity, Role
from core.settings import build_settings

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"])
XFF = ClientAddressing(trusted=PROXIES, header="x-forwarded-for")
FORWARDED = ClientAddressing(trusted=PROXIES, header="forwarded")
NO_PROXIES = ClientAddressing()


class Peer:
    def __init__(self, host: str) -> None:
        self.host = host

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.host, 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


def request(peer: str, headers: dict[str, str] | list[tuple[str, str]] | None = None) -> Any:
    from multidict import CIMultiDict

    return make_mocked_request("GET", "/", headers=CIMultiDict(headers or {}), transport=Peer(peer))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() -> None:
    spoofed = request(
        "203.0.113.7", {"X-Forwarded-For": "198.51.100.1", "Forwarded": "for=1.2.3.4"}
    )
    assert client_address(spoofed, NO_PROXIES) == "203.0.113.7"


def test_a_header_from_an_untrusted_peer_is_ignored() -> None:
    spoofed = request("203.0.113.7", {"X-Forwarded-For": "198.51.100.1"})
    assert client_address(spoofed, XFF) == "203.0.113.7"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() -> None:
    proxied = request("10.0.0.2", {"X-Forwarded-For": "198.51.100.1, 192.0.2.9, 10.0.0.5"})
    # 198.51.100.1 was written by the client itself and cannot be believed; 192.0.2.9 is the
    # address the first trusted proxy saw.
    assert client_address(proxied, XFF) == "192.0.2.9"


def test_x_forwarded_for_over_several_header_lines_is_one_chain() -> None:
    proxied = request(
        "10.0.0.2", [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "192.0.2.9")]
    )
    assert client_address(proxied, XFF) == "192.0.2.9"


@pytest.mark.parametrize("n", range(3))
def test_a_spoofed_forwarded_header_does_not_pick_the_bucket_behind_an_xff_proxy(n: int) -> None:
    # nginx sets only X-Forwarded-For; a client adding Forwarded must not choose its address.
    spoofed = request(
        "10.0.0.2", {"Forwarded": f"for=198.51.100.{n}", "X-Forwarded-For": "192.0.2.9"}
    )
    assert client_address(spoofed, XFF) == "192.0.2.9"


@pytest.mark.parametrize("n", range(3))
def test_a_spoofed_x_forwarded_for_does_not_pick_the_bucket_behind_a_forwarded_proxy(
    n: int,
) -> None:
    spoofed = request(
        "10.0.0.2", {"X-Forwarded-For": f"198.51.100.{n}", "Forwarded": "for=192.0.2.60"}
    )
    assert client_address(spoofed, FORWARDED) == "192.0.2.60"


def test_a_client_prefix_written_into_the_chain_is_not_believed() -> None:
    # The client sends "X-Forwarded-For: 198.51.100.1"; the proxy appends what it saw.
    proxied = request("10.0.0.2", {"X-Forwarded-For": "198.51.100.1, 10.0.0.7, 192.0.2.9"})
    assert client_address(proxied, XFF) == "192.0.2.9"


def test_the_forwarded_header_is_read_with_quotes_brackets_and_ports() -> None:
    proxied = request(
        "10.0.0.2", {"Forwarded": 'for=192.0.2.60;proto=https, for="[2001:db8::17]:4711"'}
    )
    assert client_address(proxied, FORWARDED) == "2001:db8::/64"


def test_a_malformed_hop_stops_the_walk_at_the_last_trusted_address() -> None:
    proxied = request("10.0.0.2", {"X-Forwarded-For": "not-an-address, 10.0.0.9"})
    assert client_address(proxied, XFF) == "10.0.0.9"


def test_an_ipv6_client_is_keyed_by_its_64() -> None:
    first = request("2001:db8:1:2:aaaa::1")
    second = request("2001:db8:1:2:bbbb::2")
    other = request("2001:db8:1:3::1")
    assert client_address(first, NO_PROXIES) == "2001:db8:1:2::/64"
    assert client_address(second, NO_PROXIES) == "2001:db8:1:2::/64"
    assert client_address(other, NO_PROXIES) == "2001:db8:1:3::/64"


def test_the_ipv6_prefix_is_configurable() -> None:
    addressing = ClientAddressing(ipv6_prefix=128)
    assert client_address(request("2001:db8::1"), addressing) == "2001:db8::1"
    assert client_address(request("2001:db8::1"), ClientAddressing(ipv6_prefix=48)) == (
        "2001:db8::/48"
    )


def test_an_ipv4_mapped_peer_is_read_as_ipv4_and_matches_ipv4_proxy_ranges() -> None:
    proxied = request("::ffff:10.0.0.2", {"X-Forwarded-For": "::ffff:192.0.2.9"})
    assert client_address(proxied, XFF) == "192.0.2.9"
    assert client_address(request("::ffff:203.0.113.7"), NO_PROXIES) == "203.0.113.7"


def test_an_ipv4_mapped_proxy_range_matches_an_ipv4_peer() -> None:
    addressing = ClientAddressing(trusted=parse_networks(["::ffff:10.0.0.0/104"]))
    proxied = request("10.0.0.2", {"X-Forwarded-For": "192.0.2.9"})
    assert client_address(proxied, addressing) == "192.0.2.9"


def test_the_addressing_comes_from_the_server_settings() -> None:
    server = build_settings(
        {
            "server": {
                "trusted_proxies": ["10.0.0.0/8"],
                "forwarded_header": "forwarded",
                "ipv6_client_prefix": 56,
            }
        }
    ).server
    assert client_addressing(server) == ClientAddressing(
        trusted=parse_networks(["10.0.0.0/8"]), header="forwarded", ipv6_prefix=56
    )


def test_an_authenticated_client_is_keyed_by_identity_not_address() -> None:
    citizen = Identity(subject="a" * 64, role=Role.CITIZEN)
    assert client_key(request("203.0.113.7"), citizen, NO_PROXIES) == "citizen:" + "a" * 64
    assert client_key(request("203.0.113.7"), None, NO_PROXIES) == "addr:203.0.113.7"


def test_remembered_addresses_stay_within_their_bound_and_answer_as_worked_out() -> None:
    addressing = ClientAddressing(trusted=PROXIES)
    first = request("10.0.0.1", {"X-Forwarded-For": "198.51.100.1"})
    assert client_address(first, addressing) == "198.51.100.1"
    assert client_address(first, addressing) == "198.51.100.1"
    for n in range(5000):  # a flood of made-up forwarded addresses
        made_up = request("10.0.0.1", {"X-Forwarded-For": f"198.18.{n // 256}.{n % 256}"})
        assert client_address(made_up, addressing) == f"198.18.{n // 256}.{n % 256}"
    assert len(addressing.remembered) <= 4096
    assert client_address(first, addressing) == "198.51.100.1"
