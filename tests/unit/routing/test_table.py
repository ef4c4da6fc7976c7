"""RouteTable: match order, catch-all routes, captured variables."""

from __future__ import annotations

import pytest

from gateway.config.schema import RouteDefinition
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Request
from gateway.extension import Predicate
from gateway.headers import Headers
from gateway.routing.route import Route, RouteUri
from gateway.routing.table import RouteTable


class PathPrefix(Predicate):
    """Matches a path prefix and captures the next segment as ``var``."""

    def __init__(self, prefix: str, var: str = "segment") -> None:
        self.prefix = prefix
        self.var = var

    def test(self, exchange: Exchange) -> bool:
        path = exchange.request.path
        if not path.startswith(self.prefix):
            return False
        exchange.uri_variables[self.var] = path[len(self.prefix) :].split("/")[0]
        return True

    def describe(self) -> str:
        return f"Paths: [{self.prefix}**]"


class MethodIs(Predicate):
    def __init__(self, method: str) -> None:
        self.method = method
        self.calls = 0

    def test(self, exchange: Exchange) -> bool:
        self.calls += 1
        return exchange.request.method == self.method

    def describe(self) -> str:
        return f"Methods: [{self.method}]"


def make_route(route_id: str, *predicates: Predicate, order: int = 0) -> Route:
    uri = "http://localhost:8080"
    return Route(
        id=route_id,
        uri=RouteUri.parse(uri),
        order=order,
        predicates=predicates,
        filters=(),
        metadata={},
        definition=RouteDefinition(id=route_id, uri=uri, order=order),
    )


def exchange(path: str = "/", method: str = "GET") -> Exchange:
    return Exchange(
        request=Request(method=method, path=path, query="", headers=Headers()),
        client_host="127.0.0.1",
        client_port=50000,
        server_host="127.0.0.1",
        server_port=8080,
    )


def test_routes_sorted_by_order_then_file_order() -> None:
    routes = [
        make_route("a", order=1),
        make_route("b", order=-1),
        make_route("c", order=1),
        make_route("d"),
        make_route("e", order=-1),
    ]
    table = RouteTable(routes)
    assert [route.id for route in table.routes] == ["b", "e", "d", "a", "c"]
    assert [route.id for route in table] == ["b", "e", "d", "a", "c"]
    assert len(table) == 5


def test_first_matching_route_wins() -> None:
    table = RouteTable(
        [
            make_route("orders", PathPrefix("/orders/")),
            make_route("users", PathPrefix("/users/")),
            make_route("users-late", PathPrefix("/users/"), order=10),
        ]
    )
    assert table.match(exchange("/users/7")) is table.get("users")
    assert table.match(exchange("/orders/1")) is table.get("orders")
    assert table.match(exchange("/other")) is None


def test_order_beats_file_order() -> None:
    table = RouteTable(
        [make_route("late", PathPrefix("/a")), make_route("early", PathPrefix("/a"), order=-5)]
    )
    matched = table.match(exchange("/a"))
    assert matched is not None
    assert matched.id == "early"


def test_route_without_predicates_matches_everything() -> None:
    table = RouteTable([make_route("orders", PathPrefix("/orders/")), make_route("catch-all")])
    matched = table.match(exchange("/anything", "DELETE"))
    assert matched is not None
    assert matched.id == "catch-all"


def test_all_predicates_must_hold() -> None:
    post = MethodIs("POST")
    table = RouteTable([make_route("post-orders", PathPrefix("/orders/"), post)])
    assert table.match(exchange("/orders/1", "GET")) is None
    assert table.match(exchange("/orders/1", "POST")) is table.get("post-orders")
    assert table.match(exchange("/users/1", "POST")) is None
    assert post.calls == 2  # not evaluated once the path did not match


def test_failed_route_captures_do_not_leak() -> None:
    table = RouteTable(
        [
            make_route("post-only", PathPrefix("/orders/", "id"), MethodIs("POST")),
            make_route("by-segment", PathPrefix("/orders/", "segment")),
        ]
    )
    ex = exchange("/orders/42", "GET")
    assert table.match(ex) is table.get("by-segment")
    assert ex.uri_variables == {"segment": "42"}


def test_no_match_leaves_no_captures() -> None:
    table = RouteTable([make_route("post-only", PathPrefix("/orders/"), MethodIs("POST"))])
    ex = exchange("/orders/42", "GET")
    ex.uri_variables["stale"] = "x"
    assert table.match(ex) is None
    assert ex.uri_variables == {}


def test_get_by_id() -> None:
    table = RouteTable([make_route("a"), make_route("b")])
    assert table.get("b") is table.routes[1]
    assert table.get("zzz") is None


def test_empty_table() -> None:
    table = RouteTable([])
    assert table.routes == ()
    assert table.match(exchange()) is None


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ConfigError, match="duplicate route id 'a'"):
        RouteTable([make_route("a"), make_route("a", order=1)])


# -- the path index must never change which route matches ------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gateway.config.schema import GatewayConfig as _Config  # noqa: E402
from gateway.config.schema import PredicateDefinition as _Pred  # noqa: E402
from gateway.config.schema import RouteDefinition as _Def  # noqa: E402
from gateway.exchange import Exchange as _Exchange  # noqa: E402
from gateway.exchange import Request as _Request  # noqa: E402
from gateway.filters.catalog import builtin_filters as _filters  # noqa: E402
from gateway.headers import Headers as _Headers  # noqa: E402
from gateway.predicates.catalog import builtin_predicates as _predicates  # noqa: E402
from gateway.routing.builder import build_routes as _build  # noqa: E402
from gateway.routing.table import RouteTable as _Table  # noqa: E402

_SEGMENTS = st.sampled_from(["a", "b", "c", "{x}", "*", "a*"])
_PATTERN = st.builds(
    # Variable names must be unique within a pattern: number them by position.
    lambda segs, tail: (
        "/" + "/".join(s.replace("{x}", f"{{x{i}}}") for i, s in enumerate(segs)) + tail
    ),
    st.lists(_SEGMENTS, min_size=0, max_size=3),
    st.sampled_from(["", "/**", "/{*rest}"]),
)
_ROUTE = st.one_of(
    st.lists(_PATTERN, min_size=1, max_size=2).map(lambda ps: ("Path", ps)),
    st.just(("Method", ["GET"])),
    st.just(("none", [])),
)
_PATH = st.lists(st.sampled_from(["a", "b", "c", "d", ""]), max_size=4).map(
    lambda segs: "/" + "/".join(segs)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ROUTE, min_size=1, max_size=8), st.lists(_PATH, min_size=1, max_size=5))
def test_index_matches_like_a_full_scan(
    routes: list[tuple[str, list[str]]], paths: list[str]
) -> None:
    definitions = tuple(
        _Def(
            id=f"r{i}",
            uri="http://127.0.0.1:1",
            predicates=()
            if name == "none"
            else (_Pred(name, {"patterns" if name == "Path" else "methods": values}),),
        )
        for i, (name, values) in enumerate(routes)
    )
    table = _Table(_build(_Config(routes=definitions), _predicates(), _filters()))
    for path in paths:
        exchange = _Exchange(_Request("GET", path, "", _Headers()), "127.0.0.1", 1, "", 0)
        expected = next(
            (r for r in table.routes if all(p.test(exchange) for p in r.predicates)), None
        )
        exchange.uri_variables.clear()
        assert table.match(exchange) is expected, path
