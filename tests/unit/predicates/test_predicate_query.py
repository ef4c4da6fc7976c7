from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import Predicate
from gateway.predicates import query

Build = Callable[..., Predicate]
Make = Callable[..., Exchange]


def test_factory_shape() -> None:
    assert query.FACTORY.name == "Query"
    assert query.FACTORY.shortcut_fields == ("param", "regexp")


def test_scg_doc_example_presence(build: Build, exchange: Make) -> None:
    # Query=green
    predicate = build("Query", "green")
    assert predicate.test(exchange(query="green"))
    assert predicate.test(exchange(query="a=1&green=x"))
    assert predicate.test(exchange(query="green="))
    assert not predicate.test(exchange(query="greenish=1"))
    assert not predicate.test(exchange())
    assert predicate.describe() == "Query: param=green regexp=null"


def test_scg_doc_example_regexp(build: Build, exchange: Make) -> None:
    # Query=red, gree.
    predicate = build("Query", "red, gree.")
    assert predicate.test(exchange(query="red=green"))
    assert predicate.test(exchange(query="red=greet"))
    assert not predicate.test(exchange(query="red=greenish"))
    assert predicate.test(exchange(query="red=blue&red=green"))
    assert predicate.describe() == "Query: param=red regexp=gree."


def test_values_are_decoded(build: Build, exchange: Make) -> None:
    predicate = build("Query", args={"param": "q", "regexp": "a b/c"})
    assert predicate.test(exchange(query="q=a+b%2Fc"))
    assert predicate.test(exchange(query="%71=a%20b/c"))


def test_flag_without_value_never_matches_a_regexp(build: Build, exchange: Make) -> None:
    assert not build("Query", "q, .*").test(exchange(query="q"))
    assert build("Query", "q, .*").test(exchange(query="q="))


def test_query_values() -> None:
    assert query.query_values("a=1&b&a=2=3&&a=", "a") == ["1", "2=3", ""]
    assert query.query_values("a=1&b", "b") == [None]


def test_bad_config(build: Build) -> None:
    with pytest.raises(ConfigError, match="argument 'regexp'"):
        build("Query", "q, (")
    with pytest.raises(ConfigError, match="unknown argument"):
        build("Query", args={"param": "q", "regex": "x"})
