from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import Predicate
from gateway.predicates import host

Build = Callable[..., Predicate]
Make = Callable[..., Exchange]


def test_factory_shape() -> None:
    assert host.FACTORY.name == "Host"
    assert host.FACTORY.shortcut_fields == ("patterns",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("www.somehost.org", True),
        ("beta.somehost.org", True),
        ("www.anotherhost.org", True),
        ("somehost.org", True),
        ("www.somehost.org:8080", True),
        ("WWW.SomeHost.ORG", True),
        ("www.otherhost.org", False),
        ("somehost.org.evil.com", False),
    ],
)
def test_scg_doc_example(build: Build, exchange: Make, value: str, expected: bool) -> None:
    # Host=**.somehost.org,**.anotherhost.org
    predicate = build("Host", "**.somehost.org,**.anotherhost.org")
    assert predicate.test(exchange(headers=[("Host", value)])) is expected


def test_captures_into_uri_variables(build: Build, exchange: Make) -> None:
    predicate = build("Host", "{sub}.myhost.org")
    ex = exchange(headers=[("host", "beta.myhost.org")])
    assert predicate.test(ex)
    assert ex.uri_variables == {"sub": "beta"}
    miss = exchange(headers=[("host", "myhost.org")])
    assert not predicate.test(miss)
    assert miss.uri_variables == {}


def test_port_in_pattern(build: Build, exchange: Make) -> None:
    predicate = build("Host", "localhost:8080")
    assert predicate.test(exchange(headers=[("Host", "localhost:8080")]))
    assert not predicate.test(exchange(headers=[("Host", "localhost:9090")]))
    assert not predicate.test(exchange(headers=[("Host", "localhost")]))


def test_no_host_header(build: Build, exchange: Make) -> None:
    assert not build("Host", "**").test(exchange())


def test_describe(build: Build) -> None:
    assert build("Host", "**.a.org, {x}.b.org").describe() == "Hosts: [**.a.org, {x}.b.org]"


def test_bad_pattern(build: Build) -> None:
    with pytest.raises(ConfigError, match=r"argument 'patterns'.*empty label"):
        build("Host", "a..b")
    with pytest.raises(ConfigError, match="argument 'patterns'"):
        build("Host", args={"patterns": []})
