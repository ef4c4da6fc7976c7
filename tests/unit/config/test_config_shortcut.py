"""One predicate/filter entry → definition: shortcut and expanded forms agree."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.shortcut import entry_name, parse_filter, parse_predicate, suggest
from gateway.errors import ConfigError
from gateway.extension import FilterFactory, PredicateFactory


def test_path_shortcut_expanded_and_indexed_forms_are_equal(
    predicates: dict[str, PredicateFactory],
) -> None:
    shortcut = parse_predicate("Path=/red/{segment},/blue/**", predicates)
    expanded = parse_predicate(
        {"name": "Path", "args": {"patterns": ["/red/{segment}", "/blue/**"]}}, predicates
    )
    indexed = parse_predicate(
        {"name": "Path", "args": {"patterns.0": "/red/{segment}", "patterns.1": "/blue/**"}},
        predicates,
    )
    assert shortcut == expanded == indexed
    assert shortcut.args == {"patterns": ["/red/{segment}", "/blue/**"]}


def test_shortcut_values_are_trimmed_and_mapped_in_order(filters: dict[str, FilterFactory]) -> None:
    definition = parse_filter("AddRequestHeader= X-Request-Red ,  Blue ", filters)
    assert definition.name == "AddRequestHeader"
    assert definition.args == {"name": "X-Request-Red", "value": "Blue"}


def test_shortcut_splits_on_the_first_equals_only(filters: dict[str, FilterFactory]) -> None:
    definition = parse_filter("AddRequestHeader=X-Query, a=b", filters)
    assert definition.args == {"name": "X-Query", "value": "a=b"}


def test_name_without_equals_has_no_args(filters: dict[str, FilterFactory]) -> None:
    assert parse_filter("PreserveHostHeader", filters).args == {}
    assert parse_filter("PreserveHostHeader=", filters).args == {}


def test_fewer_values_than_fields_leaves_the_rest_out(filters: dict[str, FilterFactory]) -> None:
    assert parse_filter("AddRequestHeader=X-A", filters).args == {"name": "X-A"}


def test_gather_list_tail_flag(predicates: dict[str, PredicateFactory]) -> None:
    definition = parse_predicate("Path=/a/**, /b, false", predicates)
    assert definition.args == {"patterns": ["/a/**", "/b"], "matchTrailingSlash": "false"}


def test_gather_list(predicates: dict[str, PredicateFactory]) -> None:
    assert parse_predicate("Method=GET,POST", predicates).args == {"methods": ["GET", "POST"]}


def test_expanded_without_args(filters: dict[str, FilterFactory]) -> None:
    assert parse_filter({"name": "PreserveHostHeader"}, filters).args == {}


def test_expanded_nested_dotted_keys(filters: dict[str, FilterFactory]) -> None:
    definition = parse_filter(
        {"name": "SetPath", "args": {"template": "/x", "extra.a": 1, "extra.b": 2}}, filters
    )
    assert definition.args == {"template": "/x", "extra": {"a": 1, "b": 2}}


def test_names_are_case_sensitive(filters: dict[str, FilterFactory]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_filter("stripPrefix=1", filters)
    assert str(caught.value) == "unknown filter 'stripPrefix' (did you mean StripPrefix?)"


def test_unknown_name_lists_close_matches(filters: dict[str, FilterFactory]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_filter("StripPrefx=1", filters)
    assert str(caught.value) == "unknown filter 'StripPrefx' (did you mean StripPrefix?)"


def test_unknown_name_without_close_match(predicates: dict[str, PredicateFactory]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_predicate("Zzz=1", predicates)
    assert str(caught.value) == "unknown predicate 'Zzz'"


def test_too_many_shortcut_values(filters: dict[str, FilterFactory]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_filter("AddRequestHeader=X-A, b, c", filters)
    assert str(caught.value) == "takes at most 2 argument(s) (name, value), got 3: 'X-A, b, c'"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            42,
            "expected a filter as 'Name=arguments' or as a mapping with name and args, "
            "got a number (42)",
        ),
        (
            ["StripPrefix=1"],
            "expected a filter as 'Name=arguments' or as a mapping with name and args, got a list",
        ),
        ("=1", "filter '=1' has no name before '='"),
        ({"args": {"parts": 1}}, "expanded filter needs a name, got nothing"),
        (
            {"name": "StripPrefix", "arg": {}},
            "unknown key(s) 'arg' in expanded filter (allowed: name, args)",
        ),
        (
            {"name": "StripPrefix", "args": "1"},
            "args must be a mapping of argument names to values, got a string ('1')",
        ),
    ],
)
def test_malformed_entries(entry: Any, message: str, filters: dict[str, FilterFactory]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_filter(entry, filters)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("entry", "name"),
    [
        ("StripPrefix=1", "StripPrefix"),
        (" PreserveHostHeader ", "PreserveHostHeader"),
        ({"name": "SetPath"}, "SetPath"),
        ("=x", None),
        (3, None),
        ({"name": 3}, None),
    ],
)
def test_entry_name(entry: object, name: str | None) -> None:
    assert entry_name(entry) == name


def test_suggest_prefers_case_only_differences() -> None:
    assert suggest("setpath", ["SetPath", "SetStatus", "PrefixPath"])[0] == "SetPath"


def test_generated_keys_are_positional_like_the_shortcut_form() -> None:
    from gateway.config.shortcut import parse_filter, parse_predicate
    from gateway.filters.catalog import builtin_filters
    from gateway.predicates.catalog import builtin_predicates

    expanded = parse_predicate(
        {"name": "Path", "args": {"_genkey_1": "/b/**", "_genkey_0": "/a/**"}},
        builtin_predicates(),
    )
    assert expanded == parse_predicate("Path=/a/**,/b/**", builtin_predicates())
    header = parse_filter(
        {"name": "AddRequestHeader", "args": {"_genkey_0": "X-A", "_genkey_1": "v"}},
        builtin_filters(),
    )
    assert dict(header.args) == {"name": "X-A", "value": "v"}
