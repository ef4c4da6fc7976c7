"""Per-layer cost of one ``typical`` request, in-process and in isolation (µs per call, best
of 5). What is left of the end-to-end CPU per request after these is the engine itself:
the event loop, socket reads and writes, the task and the awaits between the layers."""

from __future__ import annotations

import random
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import httptools

from discovery.instance import ServiceInstance
from gateway.config.loader import parse_text
from gateway.engine.framing import serialize_headers, status_line
from gateway.engine.pool import ConnectionPool, PoolSettings
from gateway.exchange import Exchange, Request, Target
from gateway.extension import SyncFilter
from gateway.filters.catalog import builtin_filters
from gateway.forwarded import ForwardedHeaders
from gateway.forwarder import Forwarder
from gateway.headers import Headers
from gateway.observability.access_log import AccessLog
from gateway.observability.metrics import Metrics
from gateway.observability.observer import RequestObserver
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.builder import build_routes
from gateway.routing.table import RouteTable
from resilience.balancer.round_robin import RoundRobin
from resilience.runtime import AttemptHooks, ServiceRuntimes

REQUEST = (
    b"GET /svc99/items/42?page=2 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: wrk\r\n"
    b"Accept: */*\r\n\r\n"
)
RESPONSE_HEADERS = [
    (b"Server", b"nginx"),
    (b"Date", b"Wed, 25 Nov 2026 14:00:00 GMT"),
    (b"Content-Type", b"text/plain"),
    (b"Content-Length", b"12"),
]


@dataclass(frozen=True, slots=True)
class LayerCost:
    layer: str
    us: float


def _us(func: Callable[[], object], number: int = 50_000) -> float:
    return min(timeit.Timer(func).repeat(repeat=5, number=number)) / number * 1e6


class _Parse:
    """The callbacks the engine's protocol implements, minus the socket."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))


def _parse() -> None:
    parser = httptools.HttpRequestParser(_Parse())
    parser.feed_data(REQUEST)


def _exchange(path: str) -> Exchange:
    headers = Headers([(b"Host", b"bench.example"), (b"User-Agent", b"wrk"), (b"Accept", b"*/*")])
    exchange = Exchange(Request("GET", path, "page=2", headers), "127.0.0.1", 5000, "", 8080)
    exchange.original_host = "bench.example"
    exchange.original_path = path
    return exchange


def measure() -> list[LayerCost]:
    from bench.stack import typical_routes

    config = parse_text(
        typical_routes(9001, 9002), "typical", builtin_predicates(), builtin_filters()
    )
    routes = build_routes(config, builtin_predicates(), builtin_filters())
    table = RouteTable(routes)
    route = table.get("svc99")
    assert route is not None
    strip, add_header = (f for f in route.filters if isinstance(f, SyncFilter))
    instances = [ServiceInstance("bench", f"i{i}", "127.0.0.1", 9001 + i) for i in range(2)]
    balancer = RoundRobin(random.Random(1))
    forwarder = Forwarder(ConnectionPool(PoolSettings()), ForwardedHeaders(), response_timeout=60)
    target = Target("127.0.0.1", 9001)

    def fresh_filtered() -> Exchange:
        exchange = _exchange("/svc99/items/42")
        table.match(exchange)
        return exchange

    def strip_prefix() -> None:
        exchange = _exchange("/svc99/items/42")
        strip.pre(exchange)

    def add_request_header() -> None:
        add_header.pre(_exchange("/items/42"))

    def upstream_head() -> None:
        exchange = _exchange("/items/42")
        exchange.original_path = "/svc99/items/42"
        forwarder.head(exchange, target)

    def response_head() -> None:
        b"".join((status_line(b"1.1", 200, None), serialize_headers(RESPONSE_HEADERS), b"\r\n"))

    metrics = Metrics()
    access_log = AccessLog(stream=_Discard())  # queued only: its writer thread isn't started
    observer = RequestObserver(metrics, access_log, None)
    runtime = ServiceRuntimes().get("bench")
    hooks = AttemptHooks(runtime, lambda: 2)
    picked = instances[0]

    def observe() -> None:
        exchange = _exchange("/svc99/items/42")
        exchange.route = route
        observer.started(exchange)
        observer.attempt(picked, 200)
        observer.finished(exchange, 200, 0, 12)

    def resilience_accounting() -> None:
        runtime.outlier.available(instances)
        entered = hooks.begin(picked.instance_id)
        hooks.outcome(picked.instance_id, True)
        hooks.release(picked.instance_id, entered)

    baseline = _us(partial(_exchange, "/svc99/items/42"))
    return [
        LayerCost("parse request head (httptools + callbacks)", _us(_parse)),
        LayerCost("build the exchange (request, headers)", baseline),
        LayerCost(
            "route match, last of 100 (Path index + pattern)", _us(fresh_filtered) - baseline
        ),
        LayerCost("StripPrefix", _us(strip_prefix) - baseline),
        LayerCost("AddRequestHeader", _us(add_request_header) - baseline),
        LayerCost("balancer pick (round-robin over 2)", _us(partial(balancer.choose, instances))),
        LayerCost(
            "upstream request head (hop-by-hop, X-Forwarded-*, serialise)",
            _us(upstream_head) - baseline,
        ),
        LayerCost("response head (status line + headers)", _us(response_head)),
        LayerCost(
            "outlier filter + attempt accounting (default resilience)",
            _us(resilience_accounting),
        ),
        LayerCost(
            "observability: metrics + access log record (default), per request",
            _us(observe, 20_000) - baseline,
        ),
    ]


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


if __name__ == "__main__":
    for cost in measure():
        print(f"{cost.us:7.2f} µs  {cost.layer}")
