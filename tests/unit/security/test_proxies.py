"""GATEWAY_TRUSTED_PROXIES: a list of IPs/CIDRs, or SCG's regex; what each trusts."""

from __future__ import annotations

import pytest

from gateway.config.schema import SpringSettings
from gateway.engine.pool import ConnectionPool, PoolSettings
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Request, Target
from gateway.forwarded import ForwardedHeaders
from gateway.forwarder import Forwarder
from gateway.headers import Headers
from gateway.security.addresses import parse_network
from gateway.security.proxies import (
    TrustedNetworks,
    TrustedPattern,
    TrustedProxies,
    trusted_proxies,
)
from gateway.settings import load_settings, with_document


def rule(text: str) -> TrustedProxies:
    parsed = trusted_proxies(text)
    assert parsed is not None
    return parsed


def test_an_empty_value_trusts_nobody() -> None:
    assert trusted_proxies("") is None
    assert trusted_proxies("   ") is None


@pytest.mark.parametrize(
    ("text", "trusted", "untrusted"),
    [
        ("127.0.0.1/32, 10.0.0.0/8", ["127.0.0.1", "10.200.3.4"], ["127.0.0.2", "11.0.0.1"]),
        ("10.0.0.0/8,192.168.1.0/24", ["10.1.1.1", "192.168.1.77"], ["192.168.2.1"]),
        # A bare address is one host.
        ("127.0.0.1", ["127.0.0.1"], ["127.0.0.10", "127x0x0x1"]),
        ("::1", ["::1", "[::1]"], ["::2", "127.0.0.1"]),
        ("2001:db8::/32, 127.0.0.1", ["2001:db8:1::5", "127.0.0.1"], ["2001:db9::1"]),
        ("[2001:db8::1]/128", ["2001:db8::1"], ["2001:db8::2"]),
        # Host bits set, as RemoteAddr (and SCG) read a CIDR.
        ("10.1.1.1/24", ["10.1.1.200"], ["10.1.2.1"]),
        # An IPv4-mapped peer (a dual-stack listener) is its IPv4 address, both ways.
        ("10.0.0.0/8", ["::ffff:10.0.0.1"], ["::ffff:11.0.0.1"]),
        ("::ffff:10.0.0.0/104", ["10.0.0.9"], ["11.0.0.1"]),
        # A zone does not hide a link-local peer.
        ("fe80::/10", ["fe80::1%eth0"], ["fec0::1"]),
    ],
)
def test_a_list_of_addresses_and_cidrs(text: str, trusted: list[str], untrusted: list[str]) -> None:
    parsed = rule(text)
    assert isinstance(parsed, TrustedNetworks)
    for address in trusted:
        assert parsed.trusts(address), address
    for address in untrusted:
        assert not parsed.trusts(address), address


def test_the_list_verdict_is_remembered_and_stays_right() -> None:
    parsed = rule("10.0.0.0/8")
    assert [parsed.trusts("10.0.0.1") for _ in range(3)] == [True] * 3
    assert [parsed.trusts("9.0.0.1") for _ in range(3)] == [False] * 3
    # Not an IP at all (a Unix socket's peer): trusted by no list.
    assert not parsed.trusts("")


@pytest.mark.parametrize(
    ("text", "trusted", "untrusted"),
    [
        (r"10\.0\.0\.\d+", ["10.0.0.7"], ["10.0.1.7", "10.0.0.7x"]),
        (r"127\.0\.0\.1|::1", ["127.0.0.1", "::1"], ["127.0.0.11"]),
        (r"192\.168\..*", ["192.168.9.9"], ["10.192.168.1"]),
    ],
)
def test_anything_else_is_scgs_regex_on_the_whole_address(
    text: str, trusted: list[str], untrusted: list[str]
) -> None:
    parsed = rule(text)
    assert isinstance(parsed, TrustedPattern)
    assert parsed.describe() == text
    for address in trusted:
        assert parsed.trusts(address), address
    for address in untrusted:
        assert not parsed.trusts(address), address


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("10.0.0.0/33", "'10.0.0.0/33'"),
        ("127.0.0.1, 10.0.0.300", "'10.0.0.300'"),
        ("10.0.0.0/8, beef", "'beef'"),
    ],
)
def test_a_broken_list_is_refused_not_read_as_a_regex(text: str, says: str) -> None:
    # As a regex each of these would trust nobody, silently.
    with pytest.raises(ValueError, match="list of IP addresses/CIDRs") as caught:
        trusted_proxies(text)
    assert says in str(caught.value)


def test_an_invalid_regex_is_refused() -> None:
    with pytest.raises(ValueError, match="nor a valid regular expression"):
        trusted_proxies(r"10\.0\.(")


def test_the_list_describes_itself_as_written() -> None:
    assert rule(" 127.0.0.1/32 ,10.0.0.0/8 ").describe() == "127.0.0.1/32, 10.0.0.0/8"


def test_parse_network_reads_mapped_networks_as_ipv4() -> None:
    assert str(parse_network("::ffff:192.0.2.0/120")) == "192.0.2.0/24"
    assert str(parse_network("::ffff:0:0/96")) == "0.0.0.0/0"
    assert str(parse_network("::/0")) == "::/0"  # not only mapped addresses: stays IPv6


def test_the_environment_variable_is_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8")
    assert load_settings().trusted_proxies == "127.0.0.1/32, 10.0.0.0/8"
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/33")
    with pytest.raises(ConfigError, match=r"GATEWAY_TRUSTED_PROXIES: .*'10\.0\.0\.0/33'"):
        load_settings()


def test_the_route_files_trusted_proxies_is_checked_too() -> None:
    settings = load_settings(config="routes.yml")
    spring = SpringSettings(trusted_proxies="10.0.0.0/8, ::1")
    assert with_document(settings, spring).trusted_proxies == "10.0.0.0/8, ::1"
    with pytest.raises(ConfigError, match=r"routes.yml: trusted-proxies: .*'10\.0\.0\.256'"):
        with_document(settings, SpringSettings(trusted_proxies="10.0.0.256"))


def _forwarded_for(fwd: ForwardedHeaders, client: str, incoming: str) -> str:
    ex = Exchange(
        Request("GET", "/x", "", Headers([(b"X-Forwarded-For", incoming.encode())])),
        client,
        5555,
        "127.0.0.1",
        8080,
    )
    head = Forwarder(ConnectionPool(PoolSettings()), fwd, response_timeout=1).head(
        ex, Target("127.0.0.1", 9000)
    )
    for line in head.decode("latin-1").split("\r\n"):
        if line.lower().startswith("x-forwarded-for:"):
            return line.partition(": ")[2]
    raise AssertionError("no X-Forwarded-For")


def test_a_cidr_list_decides_whose_forwarding_headers_go_upstream() -> None:
    fwd = ForwardedHeaders(rule("10.0.0.0/8").trusts)
    assert _forwarded_for(fwd, "10.0.0.9", "203.0.113.5") == "203.0.113.5,10.0.0.9"
    assert _forwarded_for(fwd, "198.51.100.1", "203.0.113.5") == "198.51.100.1"
