from __future__ import annotations

from gateway.headers import Headers


def test_case_insensitive_lookup_keeps_wire_case_and_order() -> None:
    headers = Headers([(b"X-A", b"1"), (b"x-b", b"2"), (b"x-a", b"3")])
    assert headers.get("x-A") == "1"
    assert headers.get_all("X-A") == ["1", "3"]
    assert "X-B" in headers
    assert headers.names() == ["X-A", "x-b"]
    assert list(headers) == [("X-A", "1"), ("x-b", "2"), ("x-a", "3")]


def test_set_replaces_all_at_first_position() -> None:
    headers = Headers([(b"A", b"1"), (b"B", b"2"), (b"a", b"3")])
    headers.set("a", "9")
    assert headers.raw == [(b"a", b"9"), (b"B", b"2")]
    headers.set("C", "4")
    assert headers.raw[-1] == (b"C", b"4")


def test_remove_and_set_all() -> None:
    headers = Headers([(b"A", b"1"), (b"B", b"2")])
    assert headers.remove("a")
    assert not headers.remove("a")
    headers.set_all("V", ["x", "y"])
    assert headers.get_all("v") == ["x", "y"]


def test_latin1_round_trip() -> None:
    headers = Headers()
    headers.add("X-N", "caf\u00e9")
    assert headers.raw == [(b"X-N", b"caf\xe9")]
    assert headers.get("x-n") == "caf\u00e9"
