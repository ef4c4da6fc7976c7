from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.patterns.path_pattern import PathPattern


def match(pattern: str, path: str, trailing: bool = True) -> dict[str, str] | None:
    return PathPattern.parse(pattern, match_trailing_slash=trailing).match(path)


# -- Spring's PathPattern Javadoc examples -------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/pages/t?st.html", "/pages/test.html", {}),
        ("/pages/t?st.html", "/pages/tXst.html", {}),
        ("/pages/t?st.html", "/pages/toast.html", None),
        ("/resources/*.png", "/resources/a.png", {}),
        ("/resources/*.png", "/resources/x/a.png", None),
        ("/resources/**", "/resources/image.png", {}),
        ("/resources/**", "/resources/css/spring.css", {}),
        ("/resources/**", "/resources", {}),
        ("/resources/{*path}", "/resources/image.png", {"path": "/image.png"}),
        ("/resources/{*path}", "/resources/css/spring.css", {"path": "/css/spring.css"}),
        ("/resources/{*path}", "/resources", {"path": ""}),
        ("/resources/{filename:\\w+}.dat", "/resources/spring.dat", {"filename": "spring"}),
        ("/resources/{filename:\\w+}.dat", "/resources/spr-ing.dat", None),
    ],
)
def test_spring_javadoc_examples(pattern: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(pattern, path) == expected


# -- SCG Path predicate examples -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/red/1", {"segment": "1"}),
        ("/red/1/", {"segment": "1"}),
        ("/red/blue", {"segment": "blue"}),
        ("/red", None),
        ("/red/", None),
        ("/red/1/2", None),
        ("/Red/1", None),
    ],
)
def test_scg_segment_example(path: str, expected: dict[str, str] | None) -> None:
    assert match("/red/{segment}", path) == expected


def test_trailing_slash_can_be_refused() -> None:
    assert match("/red/{segment}", "/red/1/", trailing=False) is None
    assert match("/red/{segment}", "/red/1", trailing=False) == {"segment": "1"}


@pytest.mark.parametrize(
    ("path", "matches"),
    [("/blue", True), ("/blue/", True), ("/blue/x/y", True), ("/bluex", False), ("/", False)],
)
def test_double_star_suffix(path: str, matches: bool) -> None:
    assert (match("/blue/**", path) is not None) is matches


# -- edge cases --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/a/{*rest}", "/a/b/c", {"rest": "/b/c"}),
        ("/a/{*rest}", "/a/", {"rest": "/"}),
        ("/a/{*rest}", "/ab", None),
        ("/{*path}", "/a/b", {"path": "/a/b"}),
        ("/**", "/", {}),
        ("/**", "/anything/at/all", {}),
        ("/a/*", "/a/b", {}),
        ("/a/*", "/a/b/", {}),
        ("/a/*", "/a/", None),  # a lone '*' needs a non-empty segment
        ("/a/*", "/a", None),
        ("/a/", "/a/", {}),
        ("/a/", "/a", None),
        ("/", "/", {}),
        ("", "", {}),
        ("/f/{name}.{ext}", "/f/a.tar.gz", {"name": "a.tar", "ext": "gz"}),
        ("/a/{id:\\d{3}}", "/a/123", {"id": "123"}),
        ("/a/{id:\\d{3}}", "/a/1234", None),
        ("/a/{x:.+}", "/a/b/c", None),  # a constraint never runs across '/'
        ("/a/{x:[a-z]+}{y:\\d+}", "/a/abc12", {"x": "abc", "y": "12"}),
        ("/a/{x-y}", "/a/1", {"x-y": "1"}),
        ("/a//b", "/a//b", {}),
        ("/a/{x}", "/a//", None),
        ("red/**", "/red/x", {}),  # leading slash added, as Spring does for mappings
        ("/a.b/c", "/aXb/c", None),  # '.' is literal
        ("/a+/(c)", "/a+/(c)", {}),
    ],
)
def test_edge_cases(pattern: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(pattern, path) == expected


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/a b/{x}", "/a%20b/c%2Fd", {"x": "c/d"}),
        ("/a/{x}", "/a/%E2%82%AC", {"x": "\u20ac"}),
        ("/a/b", "/a;jsessionid=1/b", {}),
        ("/a/{x}", "/a/v;p=1", {"x": "v"}),
        ("/a/{*rest}", "/a/%7E/x;y", {"rest": "/~/x"}),
        ("/a/{x:\\d+}", "/a/%31%32", {"x": "12"}),
        ("/a/b", "/a%2Fb", None),  # an encoded slash is not a separator
    ],
)
def test_matches_decoded_segments(pattern: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(pattern, path) == expected


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("/red/{segment}", "/red/"),
        ("/blue/**", "/blue"),
        ("/api/v1/users", "/api/v1/users"),
        ("/a/b*c", "/a/b"),
        ("/a/t?st", "/a/t"),
        ("/{*path}", ""),
        ("/**", ""),
        ("/", "/"),
    ],
)
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert PathPattern.parse(pattern).literal_prefix == prefix


def test_text_is_kept() -> None:
    assert PathPattern.parse("red/**").text == "red/**"


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        ("/a/**/b", "'**' is only allowed at the end"),
        ("/a/{*x}/b", "only allowed at the end"),
        ("/a/{*x}{y}", "whole segment"),
        ("/a{*x}", "whole segment"),
        ("/a/{x", "never closed"),
        ("/a/x}", "'}' without '{'"),
        ("/a/{x:\\d+/b}", "never closed"),
        ("/a/{x{y}}", "'{' inside a variable name"),
        ("/a/{x}/{x}", "captured twice"),
        ("/{x}/{*x}", "captured twice"),
        ("/a/{x:(\\d)}", "capturing groups"),
        ("/a/{x:[}", "bad regex"),
        ("/a/{x:}", "empty regex"),
        ("/a/{}", "bad variable name"),
        ("/a/{1x}", "bad variable name"),
        ("/a/{x y}", "bad variable name"),
    ],
)
def test_invalid_patterns(pattern: str, needle: str) -> None:
    with pytest.raises(ValueError, match="invalid path pattern") as info:
        PathPattern.parse(pattern)
    assert needle in str(info.value)


# -- properties ---------------------------------------------------------------------------------
_SEGMENT = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"),
    min_size=1,
    max_size=12,
)
_SEGMENTS = st.lists(_SEGMENT, min_size=1, max_size=6)
_ANY_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\uffff"),
    min_size=1,
    max_size=20,
)


@given(_SEGMENTS)
def test_literal_pattern_matches_its_own_path(segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    pattern = PathPattern.parse(path)
    assert pattern.match(path) == {}
    assert pattern.match(path + "/") == {}
    assert PathPattern.parse(path, match_trailing_slash=False).match(path + "/") is None
    assert pattern.literal_prefix == path


@given(_SEGMENTS, st.data())
def test_a_different_literal_never_matches(segments: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(segments) - 1))
    other = data.draw(_SEGMENT.filter(lambda s: s != segments[index]))
    changed = [*segments[:index], other, *segments[index + 1 :]]
    pattern = PathPattern.parse("/" + "/".join(segments))
    assert pattern.match("/" + "/".join(changed)) is None


@given(_SEGMENTS, st.data())
def test_variable_captures_the_segment(segments: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(segments) - 1))
    template = [*segments[:index], "{var}", *segments[index + 1 :]]
    pattern = PathPattern.parse("/" + "/".join(template))
    assert pattern.match("/" + "/".join(segments)) == {"var": segments[index]}


@given(_SEGMENTS, st.lists(_SEGMENT, max_size=5), st.booleans())
def test_double_star_matches_any_extension(
    base: list[str], extension: list[str], trailing_slash: bool
) -> None:
    prefix = "/" + "/".join(base)
    tail = "".join("/" + s for s in extension) + ("/" if trailing_slash else "")
    assert PathPattern.parse(prefix + "/**").match(prefix + tail) == {}
    assert PathPattern.parse(prefix + "/{*rest}").match(prefix + tail) == {"rest": tail}


@given(_SEGMENTS, _SEGMENT)
def test_double_star_needs_a_segment_boundary(base: list[str], glued: str) -> None:
    prefix = "/" + "/".join(base)
    assert PathPattern.parse(prefix + "/**").match(prefix + glued) is None


@given(_ANY_TEXT)
def test_captured_values_are_percent_decoded(value: str) -> None:
    pattern = PathPattern.parse("/x/{v}")
    assert pattern.match("/x/" + quote(value, safe="")) == {"v": value}
