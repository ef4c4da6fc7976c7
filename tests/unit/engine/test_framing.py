from __future__ import annotations

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.engine.framing import (
    HOP_BY_HOP,
    Framing,
    connection_tokens,
    end_to_end,
    normalize_path,
    request_framing,
    status_line,
    strip_hop_by_hop,
)
from gateway.errors import BadRequest


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/", "/"),
        ("/a/b", "/a/b"),
        ("/a/./b", "/a/b"),
        ("/a/../b", "/b"),
        ("/../../a", "/a"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a//b", "/a//b"),
        ("/a/.hidden/..x", "/a/.hidden/..x"),
    ],
)
def test_dot_segments_are_removed(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize(
    "raw", ["/a%2fb", "/a%2Fb", "/a%5Cb", "/a\\b", "/%2e%2e/x", "/a/%2E/b", "a"]
)
def test_ambiguous_paths_are_refused(raw: str) -> None:
    with pytest.raises(BadRequest):
        normalize_path(raw)


segment = st.text(alphabet="abc.-_~%20", min_size=0, max_size=6).filter(lambda s: "%2" not in s)


@given(st.lists(st.one_of(segment, st.sampled_from([".", ".."])), max_size=8))
def test_normalised_paths_have_no_dot_segments(segments: list[str]) -> None:
    path = normalize_path("/" + "/".join(segments))
    assert path.startswith("/")
    assert "." not in path.split("/") and ".." not in path.split("/")
    assert normalize_path(path) == path  # idempotent


def h(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(n.encode(), v.encode()) for n, v in pairs]


def test_framing_kinds() -> None:
    assert request_framing(h(("Host", "x"))) == Framing(None, False)
    assert request_framing(h(("Content-Length", "10"))) == Framing(10, False)
    assert request_framing(h(("transfer-encoding", "Chunked"))) == Framing(None, True)
    assert not Framing(0, False).has_body


@pytest.mark.parametrize(
    "headers",
    [
        h(("Content-Length", "1"), ("Transfer-Encoding", "chunked")),
        h(("Content-Length", "1"), ("Content-Length", "1")),
        h(("Content-Length", "-1")),
        h(("Content-Length", "1e3")),
        h(("Content-Length", "1, 1")),
        h(("Transfer-Encoding", "gzip")),
        h(("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")),
    ],
)
def test_ambiguous_framing_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(BadRequest):
        request_framing(headers)


def test_status_line_uses_standard_phrases() -> None:
    assert status_line(b"1.1", 404, None) == b"HTTP/1.1 404 Not Found\r\n"
    assert status_line(b"1.0", 599, None) == b"HTTP/1.0 599 \r\n"
    assert status_line(b"1.1", 200, "Fine") == b"HTTP/1.1 200 Fine\r\n"


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nX A: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX(A: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: a\x7fb\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ],
)
def test_the_parser_refuses_what_framing_does_not_check(head: bytes) -> None:
    """``request_framing`` relies on llhttp's strict mode for tokens and field values."""

    class Callbacks:
        def on_header(self, name: bytes, value: bytes) -> None:
            return None

    parser = httptools.HttpRequestParser(Callbacks())
    with pytest.raises(httptools.HttpParserError):
        parser.feed_data(head)


def test_hop_by_hop_fields_and_those_named_in_connection_are_not_passed_on() -> None:
    raw = h(
        ("Connection", "keep-alive, X-Hop"),
        ("connection", "x-other"),
        ("Keep-Alive", "timeout=5"),
        ("X-Hop", "1"),
        ("X-Other", "2"),
        ("Content-Length", "12"),
        ("X-End", "3"),
    )
    assert end_to_end(raw) == (h(("Content-Length", "12"), ("X-End", "3")), 12, False)


def test_end_to_end_reports_chunking_and_drops_what_the_caller_rewrites() -> None:
    raw = h(("Transfer-Encoding", "chunked"), ("X-Request-Id", "theirs"), ("X-A", "1"))
    fields, length, chunked = end_to_end(raw, drop=frozenset({b"x-request-id"}))
    assert (fields, length, chunked) == (h(("X-A", "1")), None, True)


def test_a_switch_keeps_upgrade_and_connection_but_not_what_connection_names() -> None:
    raw = h(("Upgrade", "websocket"), ("Connection", "Upgrade, X-Hop"), ("X-Hop", "1"))
    keep = frozenset({b"upgrade", b"connection"})
    assert strip_hop_by_hop(raw, keep) == h(
        ("Upgrade", "websocket"), ("Connection", "Upgrade, X-Hop")
    )


def _reference(
    raw: list[tuple[bytes, bytes]], keep: frozenset[bytes], drop: frozenset[bytes]
) -> list[tuple[bytes, bytes]]:
    """RFC 9110 §7.6.1 spelled out in two passes, to hold the one-pass version to it."""
    named: set[bytes] = set()
    for name, value in raw:
        if name.lower() == b"connection":
            named |= connection_tokens(value)
    hop = (HOP_BY_HOP | named) - keep
    return [
        (n, v)
        for n, v in raw
        if n.lower() not in hop and (n.lower() in HOP_BY_HOP or n.lower() not in drop)
    ]


_names = st.sampled_from(
    ["Connection", "connection", "Keep-Alive", "Upgrade", "TE", "X-A", "x-b", "Content-Length"]
)
_values = st.sampled_from(["", "x-a", "X-B, keep-alive", "upgrade", " x-a ,te", "5"])


@given(
    st.lists(st.tuples(_names, _values), max_size=8),
    st.sets(st.sampled_from([b"upgrade", b"connection", b"te"])),
    st.sets(st.sampled_from([b"x-a", b"content-length"])),
)
def test_the_one_pass_rule_matches_its_definition(
    pairs: list[tuple[str, str]], keep: set[bytes], drop: set[bytes]
) -> None:
    raw = h(*pairs)
    fields, _, _ = end_to_end(raw, keep=frozenset(keep), drop=frozenset(drop))
    assert fields == _reference(raw, frozenset(keep), frozenset(drop))
