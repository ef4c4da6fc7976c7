from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import Predicate
from gateway.predicates import path

Build = Callable[..., Predicate]
Make = Callable[..., Exchange]


def test_factory_shape() -> None:
    assert path.FACTORY.name == "Path"
    assert path.FACTORY.shortcut_fields == ("patterns", "matchTrailingSlash")


def test_scg_doc_example(build: Build, exchange: Make) -> None:
    # Path=/red/{segment},/blue/{segment}
    predicate = build("Path", "/red/{segment},/blue/{segment}")
    for url, segment in [
        ("/red/1", "1"),
        ("/red/1/", "1"),
        ("/red/blue", "blue"),
        ("/blue/green", "green"),
    ]:
        ex = exchange(url)
        assert predicate.test(ex)
        assert ex.uri_variables == {"segment": segment}
    assert not predicate.test(exchange("/green/1"))
    assert not predicate.test(exchange("/red/1/2"))


def test_trailing_slash_flag_in_shortcut(build: Build, exchange: Make) -> None:
    predicate = build("Path", "/red/{segment},/blue/{segment},false")
    assert predicate.test(exchange("/red/1"))
    assert not predicate.test(exchange("/red/1/"))
    assert predicate.describe() == (
        "Paths: [/red/{segment}, /blue/{segment}], match trailing slash: false"
    )


def test_describe_default(build: Build) -> None:
    predicate = build("Path", "/red/{segment},/blue/**")
    assert predicate.describe() == "Paths: [/red/{segment}, /blue/**], match trailing slash: true"


def test_expanded_form_with_indexed_keys(build: Build, exchange: Make) -> None:
    predicate = build(
        "Path", args={"patterns.0": "/a/**", "patterns.1": "/b/{x}", "matchTrailingSlash": False}
    )
    assert predicate.test(exchange("/a/z/y"))
    assert not predicate.test(exchange("/b/q/"))


def test_deprecated_flag_name_is_accepted(build: Build, exchange: Make) -> None:
    predicate = build(
        "Path", args={"patterns": ["/b/{x}"], "matchOptionalTrailingSeparator": False}
    )
    assert not predicate.test(exchange("/b/q/"))


def test_first_matching_pattern_publishes_variables(build: Build, exchange: Make) -> None:
    predicate = build("Path", "/a/{first},/{second}/b")
    ex = exchange("/a/b")
    assert predicate.test(ex)
    assert ex.uri_variables == {"first": "b"}


def test_no_variables_written_without_match(build: Build, exchange: Make) -> None:
    predicate = build("Path", "/a/{x}")
    ex = exchange("/b/c")
    ex.uri_variables["keep"] = "1"
    assert not predicate.test(ex)
    assert ex.uri_variables == {"keep": "1"}


def test_variables_are_decoded(build: Build, exchange: Make) -> None:
    ex = exchange("/files/a%20b/c%2Fd")
    assert build("Path", "/files/{name}/{rest}").test(ex)
    assert ex.uri_variables == {"name": "a b", "rest": "c/d"}


def test_capture_the_rest(build: Build, exchange: Make) -> None:
    ex = exchange("/api/v1/users")
    assert build("Path", "/api/{*rest}").test(ex)
    assert ex.uri_variables == {"rest": "/v1/users"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"patterns": "/a/**/b"}, "'**' is only allowed at the end"),
        ({"patterns": "/a/{x"}, "never closed"),
        ({"patterns": "/a/{x}/{x}"}, "captured twice"),
        ({"patterns": "/a/{x:(a|b)}"}, "capturing groups"),
        ({"patterns": []}, "at least one"),
        ({"patterns": "/a", "matchTrailingSlash": "maybe"}, "not a boolean"),
    ],
)
def test_bad_config(build: Build, args: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=r"argument '(patterns|matchTrailingSlash)'") as info:
        build("Path", args=args)
    assert needle in str(info.value)


def test_unknown_argument_is_rejected(build: Build) -> None:
    with pytest.raises(ConfigError, match="unknown argument"):
        build("Path", args={"patterns": "/a", "matchTrailingSlsh": True})
