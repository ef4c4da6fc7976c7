from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.patterns.java_regex import compile_java_regex, compile_replacement


def java_replace_all(regexp: str, replacement: str, text: str) -> str:
    pattern = compile_java_regex(regexp)
    return pattern.sub(compile_replacement(replacement, pattern), text)


def test_named_group_becomes_python_named_group() -> None:
    pattern = compile_java_regex("/red/?(?<segment>.*)")
    assert pattern.groupindex == {"segment": 1}
    match = pattern.match("/red/blue")
    assert match is not None
    assert match.group("segment") == "blue"


def test_lookbehind_is_left_alone() -> None:
    assert compile_java_regex("(?<=a)b").search("ab") is not None
    assert compile_java_regex("(?<!a)b").search("ab") is None


def test_named_backreference() -> None:
    assert compile_java_regex(r"(?<x>a)\k<x>").fullmatch("aa") is not None


def test_possessive_and_atomic_are_supported() -> None:
    assert compile_java_regex("a++a").fullmatch("aaa") is None
    assert compile_java_regex("(?>a+)b").fullmatch("aab") is not None


def test_word_classes_are_ascii_like_java() -> None:
    assert compile_java_regex(r"\w+").fullmatch("é") is None
    assert compile_java_regex(r"(?U)\w+").fullmatch("é") is not None


def test_java_only_escapes() -> None:
    assert compile_java_regex(r"\p{Alpha}+").fullmatch("abcXYZ") is not None
    assert compile_java_regex(r"[\p{Digit}_]+").fullmatch("1_2") is not None
    assert compile_java_regex(r"\Qa.b\E").fullmatch("a.b") is not None
    assert compile_java_regex(r"\Qa.b\E").fullmatch("axb") is None
    assert compile_java_regex(r"a\z").search("a") is not None
    assert compile_java_regex(r"\h").fullmatch("\t") is not None
    assert compile_java_regex(r"\0101").fullmatch("A") is not None


def test_leading_inline_flags() -> None:
    assert compile_java_regex("(?i)abc").fullmatch("ABC") is not None
    assert compile_java_regex("(?i)(?s)a.c").fullmatch("A\nC") is not None
    assert compile_java_regex("x(?i:abc)").fullmatch("xABC") is not None


@pytest.mark.parametrize(
    "pattern",
    [
        "a(?i)b",  # mid-pattern global flag
        "[a-z&&[^e]]",  # intersection
        "[a[b]]",  # union
        r"\p{InGreek}",  # unicode block
        r"\G",
        "(?<1bad>x)",
        "(unclosed",
        "[abc",
    ],
)
def test_untranslatable_or_invalid_is_rejected(pattern: str) -> None:
    with pytest.raises(ValueError, match="regular expression"):
        compile_java_regex(pattern)


def test_replacement_named_and_numbered_groups() -> None:
    assert java_replace_all("/red/?(?<segment>.*)", "/${segment}", "/red/blue") == "/blue"
    assert java_replace_all("(a)(b)", "$2$1", "abab") == "baba"


def test_replacement_yaml_convention() -> None:
    assert java_replace_all("/red/?(?<segment>.*)", "/$\\{segment}", "/red/blue") == "/blue"


def test_replacement_escaped_dollar_and_backslash() -> None:
    assert java_replace_all("a", "\\$1\\\\", "a") == "$1\\"


def test_replacement_multidigit_group_is_greedy_only_while_group_exists() -> None:
    # one group: "$10" is group 1 followed by a literal "0", as in Java
    assert java_replace_all("(a)", "$10", "a") == "a0"


def test_unmatched_group_contributes_nothing() -> None:
    assert java_replace_all("(a)|(b)", "[$1$2]", "ab") == "[a][b]"


def test_replace_all_semantics_for_empty_matches() -> None:
    assert java_replace_all("x*", "-", "abc") == "-a-b-c-"


@pytest.mark.parametrize(
    ("replacement", "needle"),
    [
        ("${missing}", "no group named"),
        ("$2", "no group 2"),
        ("$", "names no group"),
        ("$x", "'$'"),
    ],
)
def test_replacement_with_bad_group_is_rejected(replacement: str, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        compile_replacement(replacement, compile_java_regex("(?<g>a)"))


SEGMENT = st.text(alphabet=st.sampled_from("abcxyz0123456789-._~%/"), min_size=0, max_size=30)


@given(SEGMENT)
def test_rewrite_red_prefix_property(segment: str) -> None:
    assert java_replace_all("/red/?(?<segment>.*)", "/$\\{segment}", f"/red/{segment}") == (
        f"/{segment}"
    )


@given(st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=40))
def test_identity_rewrite_property(text: str) -> None:
    assert java_replace_all("(?<all>.*)", "${all}", text) == text


NAMES = st.lists(
    st.from_regex(r"[a-z][a-zA-Z0-9]{0,6}", fullmatch=True), min_size=0, max_size=5, unique=True
)


@given(NAMES)
def test_converter_keeps_named_group_count(names: list[str]) -> None:
    java = "".join(f"(?<{name}>x?)" for name in names) + "(?<=y?)z?"
    pattern = compile_java_regex(java.replace("(?<=y?)", "(?<=y)"))
    assert len(pattern.groupindex) == len(names)
    assert list(pattern.groupindex) == names
