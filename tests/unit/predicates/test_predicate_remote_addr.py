from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import Predicate
from gateway.predicates import remote_addr

Build = Callable[..., Predicate]
Make = Callable[..., Exchange]


def test_factory_shape() -> None:
    assert remote_addr.FACTORY.name == "RemoteAddr"
    assert remote_addr.FACTORY.shortcut_fields == ("sources",)


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("192.168.1.10", True),
        ("192.168.1.255", True),
        ("192.168.2.10", False),
        ("::ffff:192.168.1.10", True),
        ("not-an-ip", False),
        ("", False),
    ],
)
def test_scg_doc_example(build: Build, exchange: Make, client: str, expected: bool) -> None:
    # RemoteAddr=192.168.1.1/24 (host bits set, as SCG accepts)
    predicate = build("RemoteAddr", "192.168.1.1/24")
    assert predicate.test(exchange(client_host=client)) is expected


def test_bare_addresses_and_ipv6(build: Build, exchange: Make) -> None:
    predicate = build("RemoteAddr", "10.0.0.1, 2001:db8::/32, ::1")
    assert predicate.test(exchange(client_host="10.0.0.1"))
    assert not predicate.test(exchange(client_host="10.0.0.2"))
    assert predicate.test(exchange(client_host="2001:db8:1::5"))
    assert predicate.test(exchange(client_host="::1"))
    assert not predicate.test(exchange(client_host="::2"))
    assert predicate.describe() == "RemoteAddrs: [10.0.0.1, 2001:db8::/32, ::1]"


def test_ipv4_rule_never_matches_ipv6(build: Build, exchange: Make) -> None:
    assert not build("RemoteAddr", "0.0.0.0/0").test(exchange(client_host="2001:db8::1"))


@pytest.mark.parametrize("source", ["10.0.0.300", "10.0.0.0/33", "banana", "10.0.0.0/x"])
def test_bad_sources(build: Build, source: str) -> None:
    with pytest.raises(ConfigError, match="argument 'sources'"):
        build("RemoteAddr", args={"sources": [source]})
