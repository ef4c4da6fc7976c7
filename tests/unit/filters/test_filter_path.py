from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from gateway.exchange import Exchange, Request
from gateway.extension import SyncFilter
from gateway.filters.path import RewritePath
from gateway.headers import Headers
from gateway.patterns.java_regex import compile_java_regex, compile_replacement

BuildFilter = Callable[..., SyncFilter]
MakeExchange = Callable[..., Exchange]


def test_strip_prefix_doc_example(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("StripPrefix", "2")
    ex = exchange_for("/name/blue/red", query="a=1")
    flt.pre(ex)
    assert ex.request.path == "/red"
    assert ex.request.query == "a=1"
    assert ex.attributes["original_paths"] == ["/name/blue/red"]
    assert flt.describe() == "[StripPrefix parts = 2]"


def test_strip_prefix_default_trailing_slash_and_root(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("StripPrefix")
    cases = {"/a/b/": "/b/", "/a": "/", "/a/": "/", "//a//b": "/b", "/": "/"}
    for before, after in cases.items():
        ex = exchange_for(before)
        flt.pre(ex)
        assert ex.request.path == after, before


def test_prefix_path(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("PrefixPath", "/mypath")
    ex = exchange_for("/hello")
    flt.pre(ex)
    assert ex.request.path == "/mypath/hello"
    # a second pass over the same exchange (retry, forward) does not prefix twice
    flt.pre(ex)
    assert ex.request.path == "/mypath/hello"
    assert flt.describe() == "[PrefixPath prefix = '/mypath']"


def test_set_path_with_variable(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("SetPath", "/{segment}")
    ex = exchange_for("/red/blue", uri_variables={"segment": "blue"})
    flt.pre(ex)
    assert ex.request.path == "/blue"
    assert ex.attributes["original_paths"] == ["/red/blue"]


def test_set_path_encodes_what_a_path_cannot_hold(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("SetPath", "/x/{v}")
    ex = exchange_for("/a", uri_variables={"v": "a b?c%20"})
    flt.pre(ex)
    assert ex.request.path == "/x/a%20b%3Fc%20"


def test_rewrite_path_doc_example(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("RewritePath", "/red/?(?<segment>.*), /$\\{segment}")
    ex = exchange_for("/red/blue", query="q=1")
    flt.pre(ex)
    assert ex.request.path == "/blue"
    assert ex.request.query == "q=1"
    assert flt.describe() == "[RewritePath /red/?(?<segment>.*) = '/${segment}']"


def test_rewrite_path_replaces_all_matches(build: BuildFilter, exchange_for: MakeExchange) -> None:
    ex = exchange_for("/a/x/a/y")
    build("RewritePath", "/a/, /b/").pre(ex)
    assert ex.request.path == "/b/x/b/y"


def test_rewrite_path_keeps_the_path_rooted(build: BuildFilter, exchange_for: MakeExchange) -> None:
    ex = exchange_for("/red/blue")
    build("RewritePath", "/red/(?<s>.*), ${s}").pre(ex)
    assert ex.request.path == "/blue"
    ex = exchange_for("/red")
    build("RewritePath", "/red, ").pre(ex)
    assert ex.request.path == "/"


def test_unchanged_path_is_not_recorded(build: BuildFilter, exchange_for: MakeExchange) -> None:
    ex = exchange_for("/other")
    build("RewritePath", "/red, /blue").pre(ex)
    assert "original_paths" not in ex.attributes


SEGMENTS = st.text(alphabet=st.sampled_from("abcz019-._~"), min_size=0, max_size=12)


def _rewrite(regexp: str, replacement: str) -> RewritePath:
    pattern = compile_java_regex(regexp)
    return RewritePath(regexp, replacement, pattern, compile_replacement(replacement, pattern))


RED = _rewrite("/red/?(?<segment>.*)", "/$\\{segment}")
IDENTITY = _rewrite("(?<all>.*)", "${all}")


def _exchange(path: str) -> Exchange:
    return Exchange(
        request=Request("GET", path, "", Headers()),
        client_host="127.0.0.1",
        client_port=1,
        server_host="127.0.0.1",
        server_port=2,
    )


@given(st.lists(SEGMENTS, max_size=5))
def test_rewrite_red_prefix_maps_to_rest(segments: list[str]) -> None:
    rest = "/".join(segments)
    ex = _exchange(f"/red/{rest}")
    RED.pre(ex)
    assert ex.request.path == f"/{rest}"


@given(st.lists(SEGMENTS, max_size=5))
def test_identity_rewrite_leaves_path_alone(segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    ex = _exchange(path)
    IDENTITY.pre(ex)
    assert ex.request.path == path
    assert "original_paths" not in ex.attributes
