"""build_routes: factories, contexts, SCG's filter order, located errors."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from gateway.config.args import Args, ShortcutType
from gateway.config.errors import ConfigErrors
from gateway.config.schema import (
    FilterDefinition,
    GatewayConfig,
    InstanceDefinition,
    PredicateDefinition,
    RouteDefinition,
)
from gateway.exchange import Exchange, Request
from gateway.extension import (
    BuildContext,
    FilterFactory,
    GatewayFilter,
    Predicate,
    PredicateFactory,
    SyncFilter,
    WeightGroups,
)
from gateway.headers import Headers
from gateway.routing.builder import build_routes, scg_filter_order


class Recorded(Predicate):
    def __init__(self, args: Mapping[str, Any], ctx: BuildContext) -> None:
        self.args = dict(args)
        self.ctx = ctx

    def test(self, exchange: Exchange) -> bool:
        return True

    def describe(self) -> str:
        return "Recorded"


class Tagged(SyncFilter):
    def __init__(self, tag: str, ctx: BuildContext) -> None:
        self.tag = tag
        self.ctx = ctx

    def describe(self) -> str:
        return f"[Tag {self.tag}]"


def _recorded(args: Args, ctx: BuildContext) -> Predicate:
    patterns = args.str_list("patterns")
    return Recorded({"patterns": patterns}, ctx)


def _weight(args: Args, ctx: BuildContext) -> Predicate:
    group, weight = args.str("group"), args.int("weight")
    ctx.weights.register(group, ctx.route_id, weight)
    return Recorded({"group": group, "weight": weight}, ctx)


def _tag(args: Args, ctx: BuildContext) -> GatewayFilter:
    return Tagged(args.str("tag"), ctx)


PREDICATES = {
    "Path": PredicateFactory("Path", ("patterns",), _recorded, ShortcutType.GATHER_LIST),
    "Weight": PredicateFactory("Weight", ("group", "weight"), _weight),
}
FILTERS = {"Tag": FilterFactory("Tag", ("tag",), _tag)}


def tag(value: str) -> FilterDefinition:
    return FilterDefinition("Tag", {"tag": value})


def tags(filters: tuple[GatewayFilter, ...]) -> list[str]:
    return [f.tag for f in filters if isinstance(f, Tagged)]


def config(*routes: RouteDefinition, defaults: tuple[str, ...] = ()) -> GatewayConfig:
    return GatewayConfig(
        routes=routes, default_filters=tuple(tag(d) for d in defaults), source="gw.yml"
    )


def test_scg_filter_order_interleaves_by_index() -> None:
    assert scg_filter_order(["d1", "d2", "d3"], ["r1"]) == ["d1", "r1", "d2", "d3"]
    assert scg_filter_order(["d1"], ["r1", "r2", "r3"]) == ["d1", "r1", "r2", "r3"]
    assert scg_filter_order(["d1", "d2"], ["r1", "r2"]) == ["d1", "r1", "d2", "r2"]
    assert scg_filter_order([], ["r1", "r2"]) == ["r1", "r2"]
    assert scg_filter_order(["d1"], []) == ["d1"]


def test_default_filters_interleave_with_route_filters() -> None:
    route = RouteDefinition(id="r", uri="http://a", filters=(tag("r1"), tag("r2")))
    built = build_routes(config(route, defaults=("d1", "d2", "d3")), PREDICATES, FILTERS)
    assert tags(built[0].filters) == ["d1", "r1", "d2", "r2", "d3"]


def test_default_filters_are_built_per_route() -> None:
    routes = (RouteDefinition(id="a", uri="http://a"), RouteDefinition(id="b", uri="http://b"))
    built = build_routes(config(*routes, defaults=("d",)), PREDICATES, FILTERS)
    first, second = (route.filters[0] for route in built)
    assert isinstance(first, Tagged)
    assert isinstance(second, Tagged)
    assert first is not second
    assert (first.ctx.route_id, second.ctx.route_id) == ("a", "b")


def test_route_fields() -> None:
    definition = RouteDefinition(
        id="orders",
        uri="lb://orders",
        predicates=(PredicateDefinition("Path", {"patterns": ["/orders/**"]}),),
        order=3,
        metadata={"response-timeout": 200},
    )
    (route,) = build_routes(config(definition), PREDICATES, FILTERS)
    assert route.id == "orders"
    assert route.uri.service == "orders"
    assert route.order == 3
    assert route.metadata == {"response-timeout": 200}
    assert route.definition is definition
    assert route.handler is None  # the composition root compiles chains
    (predicate,) = route.predicates
    assert isinstance(predicate, Recorded)
    assert predicate.args == {"patterns": ["/orders/**"]}


def test_routes_keep_file_order() -> None:
    routes = (
        RouteDefinition(id="b", uri="http://b", order=2),
        RouteDefinition(id="a", uri="http://a", order=1),
    )
    assert [r.id for r in build_routes(config(*routes), PREDICATES, FILTERS)] == ["b", "a"]


def test_contexts_share_one_weight_group_and_name_their_route() -> None:
    calls: list[BuildContext] = []

    def ctx_factory() -> BuildContext:
        ctx = BuildContext(rng=random.Random(1), weights=WeightGroups(random.Random(7)))
        calls.append(ctx)
        return ctx

    routes = tuple(
        RouteDefinition(
            id=route_id,
            uri="http://a",
            predicates=(PredicateDefinition("Weight", {"group": "g", "weight": weight}),),
        )
        for route_id, weight in (("blue", "8"), ("green", "2"))
    )
    built = build_routes(config(*routes), PREDICATES, FILTERS, ctx_factory)
    assert len(calls) == 1
    contexts = [p.ctx for route in built for p in route.predicates if isinstance(p, Recorded)]
    assert [ctx.route_id for ctx in contexts] == ["blue", "green"]
    assert contexts[0].weights is contexts[1].weights is calls[0].weights
    assert contexts[0].rng is calls[0].rng
    # Both routes registered into the one group: a choice is always one of them.
    picks = {contexts[0].weights.chosen("g", _exchange()) for _ in range(20)}
    assert picks <= {"blue", "green"}


def test_known_services_include_static_services() -> None:
    cfg = GatewayConfig(
        routes=(
            RouteDefinition(
                id="r",
                uri="http://a",
                predicates=(PredicateDefinition("Path", {"patterns": ["/"]}),),
            ),
        ),
        services={"orders": (InstanceDefinition(host="h", port=1),)},
    )
    (route,) = build_routes(
        cfg, PREDICATES, FILTERS, lambda: BuildContext(known_services=frozenset({"users"}))
    )
    (predicate,) = route.predicates
    assert isinstance(predicate, Recorded)
    assert predicate.ctx.known_services == frozenset({"users", "orders"})


def test_errors_carry_locations_and_are_collected() -> None:
    routes = (
        RouteDefinition(
            id="a",
            uri="http://a",
            predicates=(PredicateDefinition("Path", {}),),
            filters=(tag("ok"), FilterDefinition("Tag", {"tag": "x", "extra": 1})),
        ),
        RouteDefinition(id="b", uri="gopher://b", filters=(FilterDefinition("Tga", {}),)),
    )
    with pytest.raises(ConfigErrors) as caught:
        build_routes(config(*routes, defaults=("d",)), PREDICATES, FILTERS)
    assert [str(e) for e in caught.value] == [
        "gw.yml: routes[0] (a) predicates[0] (Path): missing required argument 'patterns'",
        "gw.yml: routes[0] (a) filters[1] (Tag): unknown argument(s): extra",
        "gw.yml: routes[1] (b) uri: unsupported URI scheme 'gopher' in 'gopher://b' "
        "(use http, https, ws, wss, lb, lb:ws or forward)",
        "gw.yml: routes[1] (b) filters[0] (Tga): unknown filter 'Tga' (did you mean Tag?)",
    ]


def test_default_filter_errors_are_reported_once() -> None:
    routes = (RouteDefinition(id="a", uri="http://a"), RouteDefinition(id="b", uri="http://b"))
    cfg = GatewayConfig(
        routes=routes, default_filters=(FilterDefinition("Tag", {}),), source="gw.yml"
    )
    with pytest.raises(ConfigErrors) as caught:
        build_routes(cfg, PREDICATES, FILTERS)
    assert [str(e) for e in caught.value] == [
        "gw.yml: default-filters[0] (Tag): missing required argument 'tag'"
    ]


def test_duplicate_ids_in_a_programmatic_config() -> None:
    routes = (RouteDefinition(id="a", uri="http://a"), RouteDefinition(id="a", uri="http://b"))
    with pytest.raises(ConfigErrors) as caught:
        build_routes(config(*routes), PREDICATES, FILTERS)
    assert [str(e) for e in caught.value] == ["gw.yml: routes[1] (a): duplicate id 'a'"]


def test_empty_config_builds_nothing() -> None:
    assert build_routes(GatewayConfig(), PREDICATES, FILTERS) == []


def _exchange() -> Exchange:
    return Exchange(
        request=Request("GET", "/", "", Headers()),
        client_host="127.0.0.1",
        client_port=1,
        server_host="127.0.0.1",
        server_port=80,
    )
