"""Shadow comparison on its own: the JSONPath subset ``ignore-json-paths`` takes, the first
differing place in two JSON documents, and what one comparison reports."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gateway.mirror.compare import (
    DEFAULT_IGNORED,
    Answer,
    CompareSpec,
    Difference,
    compare,
    first_byte_difference,
    first_json_difference,
)
from gateway.mirror.jsonpath import WILDCARD, format_path, parse

# -- the JSONPath subset ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("$.a", ("a",)),
        ("$.a.b", ("a", "b")),
        ("$.a[0]", ("a", 0)),
        ("$.a[*].b", ("a", WILDCARD, "b")),
        ("$.a.*", ("a", WILDCARD)),
        ("$[3]", (3,)),
        ("$['a b'].c", ("a b", "c")),
        ('$["x.y"]', ("x.y",)),
        ("$['it\\'s']", ("it's",)),
        ("$.created-at", ("created-at",)),
        ("  $.padded  ", ("padded",)),
    ],
)
def test_supported_paths(text: str, steps: tuple[object, ...]) -> None:
    assert parse(text).steps == steps


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a.b", "must start with $"),
        ("$", "names the whole body"),
        ("$..a", "recursive descent"),
        ("$.a[?(@.x)]", "filter expressions are not supported"),
        ("$.a[1:3]", "slices are not supported"),
        ("$.a[0,1]", "unions are not supported"),
        ("$.a[-1]", "negative indexes are not supported"),
        ("$.a[x]", "unsupported subscript [x]"),
        ("$.a[0", "unclosed '['"),
        ("$['a", "unterminated quoted name"),
        ("$.", "expected a member name"),
        ("$.1a", "expected a member name"),
        ("$a", "unexpected 'a'"),
    ],
)
def test_refused_paths_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        parse(text)


@pytest.mark.parametrize(
    ("steps", "text"),
    [
        ([], "$"),
        (["items", 2, "id"], "$.items[2].id"),
        (["a b"], "$['a b']"),
        (["it's"], "$['it\\'s']"),
        ([0, "x"], "$[0].x"),
    ],
)
def test_places_are_named_as_paths(steps: list[str | int], text: str) -> None:
    assert format_path(steps) == text


# -- the first differing place --------------------------------------------------------------------


def diff(a: Any, b: Any, *ignore: str) -> str | None:
    found = first_json_difference(a, b, [parse(p) for p in ignore])
    return None if found is None else format_path(found)


def test_equal_documents_have_no_difference() -> None:
    doc = {"a": [1, 2, {"b": None}], "c": "x", "d": True, "e": 1.5}
    assert diff(doc, json.loads(json.dumps(doc))) is None


def test_member_order_does_not_matter_and_numbers_compare_by_value() -> None:
    assert diff({"a": 1, "b": 2}, {"b": 2, "a": 1}) is None
    assert diff({"n": 1}, {"n": 1.0}) is None


@pytest.mark.parametrize(
    ("a", "b", "where"),
    [
        ({"a": 1}, {"a": 2}, "$.a"),
        ({"a": True}, {"a": 1}, "$.a"),  # a boolean is not a number
        ({"a": None}, {"a": 0}, "$.a"),
        ({"a": "1"}, {"a": 1}, "$.a"),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}, "$.a.b[1]"),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}, "$.a[2]"),  # the shadow has one more
        ({"a": [1, 2, 3]}, {"a": [1, 2]}, "$.a[2]"),
        ({"a": 1}, {"a": 1, "z": 2}, "$.z"),  # a member only the shadow has
        ({"a": 1, "z": 2}, {"a": 1}, "$.z"),
        ({"a": {}}, {"a": []}, "$.a"),
        ([1], {"0": 1}, "$"),
        ({"x y": 1}, {"x y": 2}, "$['x y']"),
        ({"a": 1, "b": 1}, {"a": 2, "b": 2}, "$.a"),  # the first, in the primary's order
    ],
)
def test_the_first_difference_is_named(a: Any, b: Any, where: str) -> None:
    assert diff(a, b) == where


def test_ignored_paths_are_left_out_with_everything_under_them() -> None:
    a = {"timestamp": 1, "meta": {"t": 1, "u": 2}, "items": [{"id": 1, "q": 1}, {"id": 2, "q": 2}]}
    b = {"timestamp": 2, "meta": {"t": 9, "u": 9}, "items": [{"id": 8, "q": 1}, {"id": 9, "q": 2}]}
    assert diff(a, b) == "$.timestamp"
    assert diff(a, b, "$.timestamp") == "$.meta.t"
    assert diff(a, b, "$.timestamp", "$.meta") == "$.items[0].id"
    assert diff(a, b, "$.timestamp", "$.meta", "$.items[*].id") is None
    assert diff(a, b, "$.timestamp", "$.meta", "$.items[0].id") == "$.items[1].id"
    assert diff(a, b, "$.timestamp", "$.meta.*", "$.*[*].id") is None


def test_an_ignored_member_may_be_missing_on_either_side() -> None:
    assert diff({"a": 1, "t": 1}, {"a": 1}, "$.t") is None
    assert diff({"a": 1}, {"a": 1, "t": 1}, "$.t") is None
    assert diff({"a": [1]}, {"a": [1, 2]}, "$.a[1]") is None
    assert diff({"a": [1]}, {"a": [1, 2]}, "$.a[*]") is None


def test_an_index_does_not_match_a_member_named_like_it() -> None:
    assert diff({"0": 1}, {"0": 2}, "$[0]") == "$['0']"
    assert diff({"0": 1}, {"0": 2}, "$['0']") is None
    assert diff([1], [2], "$['0']") == "$[0]"


def test_a_path_deeper_than_the_document_changes_nothing() -> None:
    assert diff({"a": 1}, {"a": 2}, "$.a.b") == "$.a"


def test_first_byte_difference() -> None:
    assert first_byte_difference(b"", b"") is None
    assert first_byte_difference(b"abc", b"abd") == 2
    assert first_byte_difference(b"abc", b"abcd") == 3
    assert first_byte_difference(b"x", b"") == 0
    long = bytes(10_000)
    assert first_byte_difference(long, long[:9_000] + b"\x01" + long[9_001:]) == 9_000


# -- one comparison ----------------------------------------------------------------------------

JSON = (b"Content-Type", b"application/json")


def answer(
    status: int = 200, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"{}"
) -> Answer:
    return Answer(status, headers if headers is not None else [JSON], body)


def test_identical_answers_are_equal() -> None:
    result = compare(CompareSpec(), answer(body=b'{"a":1}'), answer(body=b'{"a": 1}'))
    assert result == Difference()
    assert result.equal


def test_every_differing_part_is_reported() -> None:
    primary = answer(200, [JSON, (b"X-Version", b"1"), (b"X-Gone", b"a")], b'{"a":1,"b":2}')
    shadow = answer(503, [JSON, (b"x-version", b"2"), (b"X-New", b"b")], b'{"a":1,"b":3}')
    result = compare(CompareSpec(), primary, shadow)
    assert result.status == (200, 503)
    assert result.headers == ("x-gone", "x-new", "x-version")
    assert result.json_path == "$.b"
    assert result.byte_offset is None
    assert not result.equal


def test_per_response_and_framing_fields_are_not_compared() -> None:
    primary = [
        JSON,
        (b"Date", b"Tue, 01 Dec 2026 10:00:00 GMT"),
        (b"Content-Length", b"2"),
        (b"Age", b"1"),
        (b"Expires", b"x"),
        (b"X-Request-Id", b"r1"),
        (b"Server-Timing", b"db;dur=1"),
        (b"Connection", b"keep-alive"),
    ]
    shadow = [JSON, (b"Date", b"Tue, 01 Dec 2026 10:00:07 GMT"), (b"Transfer-Encoding", b"chunked")]
    assert compare(CompareSpec(), answer(headers=primary), answer(headers=shadow)).equal
    assert {b"date", b"content-length", b"transfer-encoding", b"connection"} <= DEFAULT_IGNORED


def test_ignore_headers_adds_to_the_defaults() -> None:
    primary = answer(headers=[JSON, (b"X-Served-By", b"a"), (b"X-Other", b"1")])
    shadow = answer(headers=[JSON, (b"X-Served-By", b"b"), (b"X-Other", b"2")])
    assert compare(CompareSpec(), primary, shadow).headers == ("x-other", "x-served-by")
    spec = CompareSpec(ignore_headers=frozenset({b"x-served-by"}))
    assert compare(spec, primary, shadow).headers == ("x-other",)


def test_repeated_fields_compare_as_ordered_value_lists() -> None:
    one = answer(headers=[JSON, (b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2")])
    swapped = answer(headers=[JSON, (b"Set-Cookie", b"b=2"), (b"Set-Cookie", b"a=1")])
    assert compare(CompareSpec(), one, swapped).headers == ("set-cookie",)


def test_ignored_json_paths_apply_to_json_bodies() -> None:
    spec = CompareSpec(ignore_paths=(parse("$.timestamp"),))
    primary = answer(body=b'{"timestamp": 1, "a": 1}')
    shadow = answer(body=b'{"a": 1, "timestamp": 2}')
    assert compare(spec, primary, shadow).equal
    assert compare(CompareSpec(), primary, shadow).json_path == "$.timestamp"


@pytest.mark.parametrize(
    "content_type", [b"application/json", b"application/problem+json", b"Application/JSON; x=y"]
)
def test_json_media_types(content_type: bytes) -> None:
    headers = [(b"Content-Type", content_type)]
    result = compare(
        CompareSpec(), answer(200, headers, b'{"a":1}'), answer(200, headers, b'{"a":2}')
    )
    assert result.json_path == "$.a"


def test_other_bodies_compare_as_bytes() -> None:
    text = [(b"Content-Type", b"text/plain")]
    result = compare(CompareSpec(), answer(200, text, b'{"a":1}'), answer(200, text, b'{"a": 1}'))
    assert (result.json_path, result.byte_offset) == (None, 5)
    none = compare(CompareSpec(), answer(200, [], b"abc"), answer(200, [], b"abc"))
    assert none.equal


def test_a_json_typed_body_that_does_not_parse_compares_as_bytes() -> None:
    result = compare(CompareSpec(), answer(body=b"{oops"), answer(body=b'{"a":1}'))
    assert (result.json_path, result.byte_offset) == (None, 1)


@pytest.mark.parametrize("depth", [600, 5000])  # parses but is too deep to walk; too deep to parse
def test_a_document_nested_past_the_walk_compares_as_bytes(depth: int) -> None:
    deep = b"[" * depth + b"]" * depth
    result = compare(CompareSpec(), answer(body=deep), answer(body=deep + b" "))
    assert result.json_path is None
    assert result.byte_offset == len(deep)
