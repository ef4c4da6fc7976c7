"""The one client address: the socket peer, or — through trusted proxies only — the first
untrusted hop of X-Forwarded-For from the right (nginx's real_ip_recursive)."""

from __future__ import annotations

import pytest

from gateway.dispatch import Dispatcher
from gateway.exchange import Exchange, Request
from gateway.headers import Headers
from gateway.routing.table import RouteTable
from gateway.security.client_address import ClientAddresses, forwarded_hop
from gateway.security.proxies import TrustedProxies, trusted_proxies


def resolver(rule: str = "127.0.0.1, 10.0.0.0/8", **options: int) -> ClientAddresses:
    proxies: TrustedProxies | None = trusted_proxies(rule)
    assert proxies is not None
    return ClientAddresses(proxies, **options)


def exchange(peer: str, *forwarded_for: str) -> Exchange:
    fields = [(b"X-Forwarded-For", value.encode("latin-1")) for value in forwarded_for]
    return Exchange(Request("GET", "/", "", Headers(fields)), peer, 40000, "127.0.0.1", 8080)


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("203.0.113.5:4711", "203.0.113.5"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("fe80::1%eth0", "fe80::1"),
        ("unknown", None),
        ("client.example.org", None),
        ("203.0.113.5:http", None),
        ("[2001:db8::1]x", None),
        ("[203.0.113.5]", None),
        ("010.0.0.1", None),
        ("_hidden", None),
    ],
)
def test_an_entry_is_an_address_with_an_optional_port(entry: str, address: str | None) -> None:
    assert forwarded_hop(entry) == address


def test_an_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    resolve = resolver()
    assert resolve(exchange("198.51.100.7", "203.0.113.5")) == "198.51.100.7"
    assert resolve(exchange("198.51.100.7", "127.0.0.1, 10.0.0.1")) == "198.51.100.7"


def test_a_trusted_peer_without_the_header_is_the_client() -> None:
    assert resolver()(exchange("127.0.0.1")) == "127.0.0.1"
    assert resolver()(exchange("127.0.0.1", "")) == "127.0.0.1"


def test_the_walk_stops_at_the_first_untrusted_hop_from_the_right() -> None:
    resolve = resolver()
    # client, then a spoofed "left" value, then two trusted proxies appended by our own edge.
    assert resolve(exchange("127.0.0.1", "6.6.6.6, 203.0.113.5, 10.0.0.2, 10.0.0.1")) == (
        "203.0.113.5"
    )
    assert resolve(exchange("127.0.0.1", "203.0.113.5")) == "203.0.113.5"


def test_every_header_line_counts_in_order() -> None:
    resolve = resolver()
    assert resolve(exchange("127.0.0.1", "203.0.113.5", "10.0.0.3, 10.0.0.2")) == "203.0.113.5"
    assert resolve(exchange("127.0.0.1", "10.0.0.3", "198.51.100.1")) == "198.51.100.1"


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    assert resolver()(exchange("127.0.0.1", "10.0.0.3, 10.0.0.2")) == "10.0.0.3"


def test_empty_entries_are_skipped() -> None:
    assert resolver()(exchange("127.0.0.1", " , 203.0.113.5 ,, 10.0.0.2 , ")) == "203.0.113.5"


def test_a_malformed_entry_ends_the_walk_at_the_last_good_address() -> None:
    resolve = resolver()
    # The trusted proxy appended 10.0.0.2; what stands left of garbage was vouched for by
    # nobody, so the last good address (a trusted hop) stays the client.
    assert resolve(exchange("127.0.0.1", "203.0.113.5, unknown, 10.0.0.2")) == "10.0.0.2"
    # Garbage the peer itself sent as the last entry: the peer stays the client.
    assert resolve(exchange("127.0.0.1", "203.0.113.5, not-an-ip")) == "127.0.0.1"


def test_ports_and_mapped_addresses_are_written_canonically() -> None:
    resolve = resolver("127.0.0.1, 10.0.0.0/8")
    assert resolve(exchange("127.0.0.1", "[2001:DB8::5]:1234, 10.0.0.2:80")) == "2001:db8::5"
    assert resolve(exchange("127.0.0.1", "::ffff:203.0.113.5, ::ffff:10.0.0.2")) == "203.0.113.5"


def test_the_walk_is_bounded() -> None:
    resolve = resolver(max_hops=3)
    header = ", ".join(["203.0.113.5"] + [f"10.0.0.{n}" for n in range(10, 0, -1)])
    # Three steps: 10.0.0.1, 10.0.0.2, 10.0.0.3 — then it stops, at a trusted hop.
    assert resolve(exchange("127.0.0.1", header)) == "10.0.0.3"
    assert resolver()(exchange("127.0.0.1", header)) == "203.0.113.5"


def test_a_regex_rule_walks_the_same_way() -> None:
    resolve = resolver(r"127\.0\.0\.1|10\.0\.0\.\d+")
    assert resolve(exchange("127.0.0.1", "203.0.113.5, 10.0.0.9")) == "203.0.113.5"
    assert resolve(exchange("10.0.1.1", "203.0.113.5")) == "10.0.1.1"


def test_the_exchange_reads_the_peer_until_resolved() -> None:
    ex = exchange("127.0.0.1", "203.0.113.5")
    assert ex.client_address == "127.0.0.1"
    ex.resolved_client = "203.0.113.5"
    assert (ex.client_address, ex.client_host) == ("203.0.113.5", "127.0.0.1")


async def test_the_dispatcher_resolves_once_before_routing() -> None:
    calls: list[str] = []
    resolve = resolver()

    def counted(ex: Exchange) -> str:
        calls.append(ex.client_host)
        return resolve(ex)

    ex = exchange("127.0.0.1", "203.0.113.5")
    response = await Dispatcher(RouteTable(()), counted)(ex)
    assert response.status == 404  # no route: resolved all the same (the access log reads it)
    assert ex.client_address == "203.0.113.5"
    assert calls == ["127.0.0.1"]
    # Without trusted proxies nothing runs: the peer is the client.
    plain = exchange("127.0.0.1", "203.0.113.5")
    await Dispatcher(RouteTable(()))(plain)
    assert (plain.resolved_client, plain.client_address) == (None, "127.0.0.1")
