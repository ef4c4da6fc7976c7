"""Micro-benchmarks of the per-request pieces that scale with configuration: route matching
over N routes, and a load-balancer pick over N instances."""

from __future__ import annotations

import random
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from discovery.instance import ServiceInstance
from gateway.config.schema import GatewayConfig, PredicateDefinition, RouteDefinition
from gateway.exchange import Exchange, Request
from gateway.filters.catalog import builtin_filters
from gateway.headers import Headers
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.builder import build_routes
from gateway.routing.table import RouteTable
from resilience.balancer.round_robin import RoundRobin


@dataclass(frozen=True, slots=True)
class MicroResult:
    name: str
    size: int
    us_per_op: float


def _table(n: int) -> RouteTable:
    definitions = tuple(
        RouteDefinition(
            id=f"r{i}",
            uri="http://127.0.0.1:1",
            predicates=(PredicateDefinition("Path", {"patterns": [f"/svc{i}/{{id}}/**"]}),),
        )
        for i in range(n)
    )
    routes = build_routes(
        GatewayConfig(routes=definitions), builtin_predicates(), builtin_filters()
    )
    return RouteTable(routes)


def _exchange(path: str) -> Exchange:
    headers = Headers([(b"Host", b"bench"), (b"User-Agent", b"wrk")])
    return Exchange(Request("GET", path, "", headers), "127.0.0.1", 1, "127.0.0.1", 2)


def _per_op_us(func: Callable[[], object], number: int) -> float:
    timer = timeit.Timer(func)
    best = min(timer.repeat(repeat=5, number=number))
    return best / number * 1e6


def route_matching(sizes: tuple[int, ...] = (10, 1_000, 10_000)) -> list[MicroResult]:
    out: list[MicroResult] = []
    for n in sizes:
        table = _table(n)
        last = _exchange(f"/svc{n - 1}/42/items")
        miss = _exchange("/nothing/here")
        number = max(20, 200_000 // n)
        assert table.match(last) is not None
        hit_us = _per_op_us(partial(table.match, last), number)
        miss_us = _per_op_us(partial(table.match, miss), number)
        out.append(MicroResult("route match (last route)", n, hit_us))
        out.append(MicroResult("route match (no match)", n, miss_us))
    return out


def balancer_pick(n: int = 1_000) -> list[MicroResult]:
    instances = [ServiceInstance("svc", f"i{i}", "127.0.0.1", 10_000 + i) for i in range(n)]
    balancer = RoundRobin(random.Random(1))
    pick_us = _per_op_us(partial(balancer.choose, instances), 200_000)
    return [MicroResult("round-robin pick", n, pick_us)]


def run_all() -> list[MicroResult]:
    return [*route_matching(), *balancer_pick()]


if __name__ == "__main__":
    for result in run_all():
        print(f"{result.name:28} n={result.size:>6}  {result.us_per_op:8.3f} µs")
