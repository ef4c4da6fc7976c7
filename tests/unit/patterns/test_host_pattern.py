from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.patterns.host_pattern import HostPattern, split_host_port


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        # SCG reference examples
        ("**.somehost.org", "www.somehost.org", {}),
        ("**.somehost.org", "beta.somehost.org", {}),
        ("**.somehost.org", "a.b.somehost.org", {}),
        ("**.somehost.org", "somehost.org", {}),
        ("**.somehost.org", "www.somehost.org:8080", {}),
        ("**.somehost.org", "www.somehost.org.", {}),
        ("**.somehost.org", "xsomehost.org", None),
        ("**.somehost.org", "somehost.org.evil", None),
        ("{sub}.myhost.org", "beta.myhost.org", {"sub": "beta"}),
        ("{sub}.myhost.org", "Beta.MyHost.ORG:443", {"sub": "Beta"}),
        ("{sub}.myhost.org", "a.b.myhost.org", None),
        ("{sub}.myhost.org", "myhost.org", None),
        # globs
        ("*", "localhost", {}),
        ("*", "localhost:8080", {}),
        ("*", "a.b", None),
        ("**", "a.b.c:1", {}),
        ("api-?.example.com", "api-1.example.com", {}),
        ("api-?.example.com", "api-12.example.com", None),
        ("*-api.example.com", "eu-api.example.com", {}),
        ("a.**.z", "a.z", {}),
        ("a.**.z", "a.b.c.z", {}),
        ("a.**.z", "a.b", None),
        ("{sub:[a-z]+}.x.io", "ab.x.io", {"sub": "ab"}),
        ("{sub:[a-z]+}.x.io", "a1.x.io", None),
        ("{sub:.+}.x.io", "a.b.x.io", None),  # a constraint stays within one label
        ("{env}.{region}.svc", "prod.eu.svc", {"env": "prod", "region": "eu"}),
        # literal, case-insensitive
        ("Example.COM", "example.com", {}),
        ("example.com", "example.com:8443", {}),
        ("example.com", "www.example.com", None),
        # ports named in the pattern
        ("localhost:8080", "localhost:8080", {}),
        ("localhost:8080", "localhost:9090", None),
        ("localhost:8080", "localhost", None),
        ("localhost:{port}", "localhost:9090", {"port": "9090"}),
        ("**.example.org:80*", "a.example.org:8080", {}),
        # IPv6 literals
        ("[::1]", "[::1]:8080", {}),
        ("[::1]:8080", "[::1]:8080", {}),
        ("[::1]:8080", "[::1]", None),
        # malformed hosts
        ("**", "a..b", None),
        ("*", "", None),
    ],
)
def test_match(pattern: str, host: str, expected: dict[str, str] | None) -> None:
    assert HostPattern.parse(pattern).match(host) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a.org", ("a.org", None)),
        ("a.org:80", ("a.org", "80")),
        ("[::1]", ("[::1]", None)),
        ("[::1]:80", ("[::1]", "80")),
    ],
)
def test_split_host_port(value: str, expected: tuple[str, str | None]) -> None:
    assert split_host_port(value) == expected


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        ("", "empty pattern"),
        ("a..b", "empty label"),
        ("{x}.{x}", "repeated"),
        ("a:b:c", "more than one"),
        ("{a", "never closed"),
        ("a}", "without"),
        ("x:**", "port"),
        ("x:", "empty port"),
        ("{a:[}.b", "bad regex"),
        ("{a:(x)}.b", "capturing groups"),
    ],
)
def test_invalid(pattern: str, needle: str) -> None:
    with pytest.raises(ValueError, match="invalid host pattern") as info:
        HostPattern.parse(pattern)
    assert needle in str(info.value)


_LABEL = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), min_size=1)
_LABELS = st.lists(_LABEL, min_size=1, max_size=5)


@given(_LABELS, st.lists(_LABEL, max_size=4), st.none() | st.integers(1, 65535))
def test_double_star_suffix_property(base: list[str], extra: list[str], port: int | None) -> None:
    host = ".".join([*extra, *base]) + (f":{port}" if port else "")
    assert HostPattern.parse("**." + ".".join(base)).match(host) == {}


@given(_LABELS, st.data())
def test_variable_captures_label(labels: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(labels) - 1))
    template = [*labels[:index], "{v}", *labels[index + 1 :]]
    assert HostPattern.parse(".".join(template)).match(".".join(labels).upper()) == {
        "v": labels[index].upper()
    }


_PATTERN_LABEL = st.sampled_from(["a", "b", "*", "**", "a*", "*b", "?", "{v}"])
_HOST_LABEL = st.sampled_from(["a", "b", "ab", "ba", "c"])


@given(st.lists(_PATTERN_LABEL, min_size=1, max_size=5), st.lists(_HOST_LABEL, max_size=6))
def test_regex_and_label_matching_agree(pattern_labels: list[str], host_labels: list[str]) -> None:
    # Plain globs compile to one regex; the label-by-label matcher (used for {var:regex}) must
    # give the same answers, so both are checked against each other on the same patterns.
    if pattern_labels.count("{v}") > 1:
        pattern_labels = [x for x in pattern_labels if x != "{v}"] or ["a"]
    pattern = HostPattern.parse(".".join(pattern_labels))
    by_labels = HostPattern.parse(".".join(pattern_labels))
    by_labels._regex = None
    host = ".".join(host_labels)
    assert pattern.match(host) == by_labels.match(host)
