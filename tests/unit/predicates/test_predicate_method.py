from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import Predicate
from gateway.predicates import method

Build = Callable[..., Predicate]
Make = Callable[..., Exchange]


def test_factory_shape() -> None:
    assert method.FACTORY.name == "Method"
    assert method.FACTORY.shortcut_fields == ("methods",)


def test_scg_doc_example(build: Build, exchange: Make) -> None:
    predicate = build("Method", "GET,POST")
    assert predicate.test(exchange(method="GET"))
    assert predicate.test(exchange(method="POST"))
    assert not predicate.test(exchange(method="DELETE"))
    assert predicate.describe() == "Methods: [GET, POST]"


def test_lower_case_config(build: Build, exchange: Make) -> None:
    predicate = build("Method", args={"methods": ["get", "GET", "patch"]})
    assert predicate.describe() == "Methods: [GET, PATCH]"
    assert predicate.test(exchange(method="PATCH"))


def test_bad_config(build: Build) -> None:
    with pytest.raises(ConfigError, match=r"argument 'methods'.*not an HTTP method"):
        build("Method", args={"methods": ["GE T"]})
    with pytest.raises(ConfigError, match="argument 'methods'"):
        build("Method", "")
