"""XForwardedRemoteAddr: the client is the last X-Forwarded-For entry, as SCG 5.0.4 resolves it.

Every expectation below was first observed on the real SCG 5.0.4 (route
``XForwardedRemoteAddr=10.0.0.0/8``, or ``127.0.0.1`` for the fallback cases, requests from
127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.config.shortcut import parse_predicate
from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import Predicate
from gateway.predicates import xforwarded_remote_addr
from gateway.predicates.catalog import builtin_predicates
from gateway.predicates.xforwarded_remote_addr import java_address

Build = Callable[..., Predicate]
Make = Callable[..., Exchange]


def test_registered_with_scg_shortcut() -> None:
    factory = builtin_predicates()["XForwardedRemoteAddr"]
    assert factory is xforwarded_remote_addr.FACTORY
    definition = parse_predicate(
        "XForwardedRemoteAddr=192.168.1.1/24, 10.0.0.0/8", builtin_predicates()
    )
    assert definition.args == {"sources": ["192.168.1.1/24", "10.0.0.0/8"]}


@pytest.mark.parametrize(
    ("forwarded", "matches"),
    [
        (["10.1.2.3"], True),
        (["10.1.2.3, 192.168.0.1"], False),  # only the last entry counts
        (["192.168.0.1, 10.1.2.3"], True),
        (["10.1.2.3,"], True),  # empty entries are dropped
        ([" , 10.1.2.3 , ,"], True),
        (["::ffff:10.0.0.1"], True),  # IPv4-mapped IPv6 is IPv4, as Java makes it
        (["10.1"], True),  # Java's two-part literal: 10.0.0.1
        (["10.0.1"], True),
        (["167772161"], True),  # one part: 10.0.0.1
        (["10.256"], True),  # the last part fills three bytes: 10.0.1.0
        (["10.16777215"], True),
        (["10.16777216"], False),
        (["010.1.2.3"], True),  # leading zeros stay decimal ...
        (["012.1.2.3"], False),  # ... so this is 12.1.2.3, not octal 10.1.2.3
        (["010.001.002.0003"], False),  # 16 characters: not a literal for Java
        (["0x0a.1.2.3"], False),
        (["[10.1.2.3]"], False),  # brackets hold IPv6 only
        (["10.1.2.300"], False),
        (["10.1.2.3:80"], False),
        (["10.1.2.3.4"], False),
        (["+10.1.2.3"], False),
        (["10..1"], False),
        (["10.1."], False),
        (["4294967296"], False),
        (["garbage"], False),  # a name: SCG asks DNS, meshgate never does
        (["10.1.2.3", "10.1.2.4"], False),  # two headers: none trusted, the peer decides
    ],
)
def test_client_is_the_last_forwarded_entry(
    build: Build, exchange: Make, forwarded: list[str], matches: bool
) -> None:
    predicate = build("XForwardedRemoteAddr", "10.0.0.0/8")
    request = exchange(headers=[("X-Forwarded-For", value) for value in forwarded])
    assert predicate.test(request) is matches


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("X-Forwarded-For", "")],
        [("X-Forwarded-For", " , ,")],
        [("X-Forwarded-For", "10.1.2.3"), ("X-Forwarded-For", "10.1.2.4")],
    ],
    ids=["none", "empty", "only-commas", "two-headers"],
)
def test_falls_back_to_the_connection_peer(
    build: Build, exchange: Make, headers: list[tuple[str, str]]
) -> None:
    predicate = build("XForwardedRemoteAddr", "127.0.0.1")
    assert predicate.test(exchange(headers=headers, client_host="127.0.0.1"))
    assert not predicate.test(exchange(headers=headers, client_host="10.9.9.9"))


def test_a_named_entry_does_not_fall_back_to_the_peer(build: Build, exchange: Make) -> None:
    # SCG: an unresolvable entry is an address it can't test, so the route does not match.
    predicate = build("XForwardedRemoteAddr", "127.0.0.1")
    forwarded = [("X-Forwarded-For", "nosuchhost.invalid")]
    assert not predicate.test(exchange(headers=forwarded, client_host="127.0.0.1"))


def test_the_header_name_is_case_insensitive(build: Build, exchange: Make) -> None:
    predicate = build("XForwardedRemoteAddr", "10.0.0.0/8")
    assert predicate.test(exchange(headers=[("x-forwarded-for", "10.0.0.1")]))


def test_ipv6_entries(build: Build, exchange: Make) -> None:
    predicate = build("XForwardedRemoteAddr", "2001:db8::/32, 127.0.0.1")
    for entry in ("2001:db8::5", "[2001:db8::5]", "2001:db8::5%eth0", "[::ffff:127.0.0.1]"):
        assert predicate.test(exchange(headers=[("X-Forwarded-For", entry)])), entry
    assert not predicate.test(exchange(headers=[("X-Forwarded-For", "2001:db9::5")]))
    assert not predicate.test(exchange(headers=[("X-Forwarded-For", "[2001:db8::5]:443")]))


def test_java_address_forms() -> None:
    assert str(java_address("127.1")) == "127.0.0.1"
    assert str(java_address("0")) == "0.0.0.0"
    assert str(java_address("::1")) == "::1"
    assert java_address("") is None
    assert java_address("1.2.3.4.") is None


def test_sources_are_remote_addr_sources(build: Build, exchange: Make) -> None:
    # Host bits may be set, as SCG accepts; a bare address is one host.
    predicate = build("XForwardedRemoteAddr", args={"sources": ["192.168.1.1/24", "10.0.0.1"]})
    assert predicate.test(exchange(headers=[("X-Forwarded-For", "192.168.1.77")]))
    assert predicate.test(exchange(headers=[("X-Forwarded-For", "10.0.0.1")]))
    assert not predicate.test(exchange(headers=[("X-Forwarded-For", "10.0.0.2")]))
    assert predicate.describe() == "XForwardedRemoteAddrs: [192.168.1.1/24, 10.0.0.1]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"sources": ["10.0.0.300"]}, "argument 'sources': not an IP address"),
        ({"sources": []}, "argument 'sources': at least one"),
        ({}, "missing required argument 'sources'"),
        ({"sources": ["10.0.0.0/8"], "other": "1"}, "unknown argument"),
    ],
)
def test_bad_arguments(build: Build, args: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build("XForwardedRemoteAddr", args=args)


@pytest.mark.parametrize("index", ["1", "2"])
def test_max_trusted_index_is_refused_with_scgs_reason(build: Build, index: str) -> None:
    # SCG 5.0.4 binds every argument of this GATHER_LIST predicate into `sources`:
    # maxTrustedIndex: 2 became the source 0.0.0.2 and the index stayed 1.
    with pytest.raises(ConfigError) as caught:
        build("XForwardedRemoteAddr", args={"sources": ["10.0.0.0/8"], "maxTrustedIndex": index})
    message = str(caught.value)
    assert message.startswith("argument 'maxTrustedIndex': SCG can't set it from configuration")
    assert "becomes the source 0.0.0.2" in message
