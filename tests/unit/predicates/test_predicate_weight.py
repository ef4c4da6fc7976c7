from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, WeightGroups
from gateway.predicates import weight

Build = Callable[..., Predicate]
Make = Callable[..., Exchange]


def test_factory_shape() -> None:
    assert weight.FACTORY.name == "Weight"
    assert weight.FACTORY.shortcut_fields == ("group", "weight")


def _group(
    build: Build, seed: int, members: dict[str, int]
) -> tuple[WeightGroups, dict[str, Predicate]]:
    groups = WeightGroups(random.Random(seed))
    predicates = {
        route: build("Weight", f"group1, {w}", ctx=BuildContext(route_id=route, weights=groups))
        for route, w in members.items()
    }
    return groups, predicates


def test_scg_doc_example_80_20(build: Build, exchange: Make) -> None:
    # weight_high: Weight=group1, 8 / weight_low: Weight=group1, 2
    _, predicates = _group(build, seed=42, members={"weight_high": 8, "weight_low": 2})
    counts = {"weight_high": 0, "weight_low": 0}
    for _ in range(10_000):
        ex = exchange()
        matched = [route for route, p in predicates.items() if p.test(ex)]
        assert len(matched) == 1  # exactly one route of the group per request
        counts[matched[0]] += 1
    assert 7_800 <= counts["weight_high"] <= 8_200
    assert counts["weight_high"] + counts["weight_low"] == 10_000


def test_same_seed_same_choices(build: Build, exchange: Make) -> None:
    def run() -> list[bool]:
        _, predicates = _group(build, seed=7, members={"a": 1, "b": 1})
        return [predicates["a"].test(exchange()) for _ in range(200)]

    assert run() == run()


def test_zero_weight_is_never_chosen(build: Build, exchange: Make) -> None:
    _, predicates = _group(build, seed=1, members={"a": 0, "b": 5})
    assert not any(predicates["a"].test(exchange()) for _ in range(1_000))


def test_describe(build: Build) -> None:
    predicate = build("Weight", "group1, 8", ctx=BuildContext(route_id="r"))
    assert predicate.describe() == "Weight: group1 8"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"group": "g", "weight": -1}, "argument 'weight': must be 0 or more"),
        ({"group": "g", "weight": "heavy"}, "argument 'weight': expected an integer"),
        ({"weight": 1}, "missing required argument 'group'"),
    ],
)
def test_bad_config(build: Build, args: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        build("Weight", args=args, ctx=BuildContext(route_id="r"))


def test_route_id_required(build: Build) -> None:
    with pytest.raises(ConfigError, match="route"):
        build("Weight", "g, 1", ctx=BuildContext())
