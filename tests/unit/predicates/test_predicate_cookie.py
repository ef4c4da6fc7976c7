from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import Predicate
from gateway.predicates import cookie

Build = Callable[..., Predicate]
Make = Callable[..., Exchange]


def test_factory_shape() -> None:
    assert cookie.FACTORY.name == "Cookie"
    assert cookie.FACTORY.shortcut_fields == ("name", "regexp")


def test_scg_doc_example(build: Build, exchange: Make) -> None:
    # Cookie=chocolate, ch.p
    predicate = build("Cookie", "chocolate, ch.p")
    assert predicate.test(exchange(headers=[("Cookie", "chocolate=chip")]))
    assert predicate.test(exchange(headers=[("Cookie", "a=1; chocolate=chap; b=2")]))
    assert not predicate.test(exchange(headers=[("Cookie", "chocolate=chips")]))
    assert not predicate.test(exchange(headers=[("Cookie", "Chocolate=chip")]))
    assert not predicate.test(exchange())
    assert predicate.describe() == "Cookie: name=chocolate regexp=ch.p"


def test_several_cookie_fields_and_quotes(build: Build, exchange: Make) -> None:
    predicate = build("Cookie", "session, [a-f0-9]+")
    ex = exchange(headers=[("Cookie", "x=1"), ("cookie", 'session="abc123"')])
    assert predicate.test(ex)


def test_cookie_values() -> None:
    assert cookie.cookie_values(["a=1; b; a = 2 ;c=3"], "a") == ["1", "2"]


def test_regexp_is_required(build: Build) -> None:
    with pytest.raises(ConfigError, match="regexp"):
        build("Cookie", "chocolate")
