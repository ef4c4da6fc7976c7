from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import Predicate
from gateway.patterns.java_regex import compile_java_regex
from gateway.predicates import header

Build = Callable[..., Predicate]
Make = Callable[..., Exchange]


def test_factory_shape() -> None:
    assert header.FACTORY.name == "Header"
    assert header.FACTORY.shortcut_fields == ("header", "regexp")


def test_scg_doc_example(build: Build, exchange: Make) -> None:
    # Header=X-Request-Id, \d+
    predicate = build("Header", r"X-Request-Id, \d+")
    assert predicate.test(exchange(headers=[("X-Request-Id", "123")]))
    assert predicate.test(exchange(headers=[("x-request-id", "123")]))
    assert not predicate.test(exchange(headers=[("X-Request-Id", "12a")]))
    assert not predicate.test(exchange())
    assert predicate.describe() == r"Header: X-Request-Id regexp=\d+"


def test_full_match_not_search(build: Build, exchange: Make) -> None:
    predicate = build("Header", "X-A, b")
    assert not predicate.test(exchange(headers=[("X-A", "abc")]))


def test_any_field_or_list_element_matches(build: Build, exchange: Make) -> None:
    predicate = build("Header", r"X-A, \d+")
    assert predicate.test(exchange(headers=[("X-A", "x"), ("X-A", "7")]))
    assert predicate.test(exchange(headers=[("X-A", "x, 7")]))
    assert predicate.test(exchange(headers=[("X-A", 'x, "7"')]))


def test_presence_without_regexp(build: Build, exchange: Make) -> None:
    predicate = build("Header", "X-Flag")
    assert predicate.test(exchange(headers=[("X-Flag", "")]))
    assert not predicate.test(exchange(headers=[("X-Other", "1")]))
    assert predicate.describe() == "Header: X-Flag regexp=null"


def test_java_named_groups_and_ascii_classes(build: Build, exchange: Make) -> None:
    predicate = build("Header", args={"header": "X-V", "regexp": r"(?<major>\d+)\.\k<major>"})
    assert predicate.test(exchange(headers=[("X-V", "2.2")]))
    assert not predicate.test(exchange(headers=[("X-V", "2.3")]))
    # Java's \w is ASCII-only.
    assert not build("Header", r"X-V, \w").test(exchange(headers=[("X-V", "\u00e9")]))
    assert build("Header", r"X-V, \w").test(exchange(headers=[("X-V", "e")]))


@pytest.mark.parametrize(
    ("java", "python"),
    [
        (r"(?<name>a)", r"(?P<name>a)"),
        (r"(?<=a)b(?<!c)", r"(?<=a)b(?<!c)"),
        (r"\(?<x>", r"\(?<x>"),
        (r"[(?<]x", r"[(?<]x"),
        (r"[]a](?<n>b)", r"[]a](?P<n>b)"),
        (r"a\z", r"a\Z"),
        (r"(?<n>a)\k<n>", r"(?P<n>a)(?P=n)"),
    ],
)
def test_translation(java: str, python: str) -> None:
    # The value predicates share the routing layer's Java-regex translation.
    assert compile_java_regex(java).pattern == python


def test_bad_regexp(build: Build) -> None:
    with pytest.raises(ConfigError, match=r"argument 'regexp': .*unclosed character class"):
        build("Header", "X-A, [a-")


def test_missing_header_name(build: Build) -> None:
    with pytest.raises(ConfigError, match="missing required argument 'header'"):
        build("Header", args={"regexp": "x"})
