"""The stack builder and the dispatcher, with the transport faked (our own protocol): the
forwarder records what it was asked to send and answers at once."""

from __future__ import annotations

import asyncio
import json
import random
import textwrap
from collections.abc import Callable, Hashable

from discovery.instance import ServiceInstance
from discovery.static import StaticRegistry
from gateway.config.loader import parse_text
from gateway.dispatch import MAX_FORWARDS, Dispatcher
from gateway.engine.pool import ConnectionPool, PoolSettings
from gateway.exchange import Destination, Exchange, Request, Response
from gateway.extension import BuildContext, WeightGroups
from gateway.filters.catalog import builtin_filters
from gateway.forwarded import ForwardedHeaders
from gateway.forwarder import Forwarder, Pick
from gateway.hash_key import KeyOf
from gateway.headers import Headers
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.builder import build_routes
from gateway.routing.route import Route
from gateway.routing.table import RouteTable
from gateway.stack import RouteStack
from resilience.runtime import AttemptHooks, ServiceRuntimes


class RecordingForwarder(Forwarder):
    """Picks as the real one does, accounts the attempt, and answers 200 without a socket."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(ConnectionPool(PoolSettings()), ForwardedHeaders(), response_timeout=60.0)
        self.sent: list[tuple[Destination, float | None, float | None]] = []
        self.delay = delay

    async def forward(
        self,
        pick: Pick,
        key_of: KeyOf | None,
        connect_timeout: float | None,
        response_timeout: float | None,
        hooks: AttemptHooks | None,
        exchange: Exchange,
        request_target: str | None = None,
    ) -> Response:
        key: Hashable | None = key_of(exchange) if key_of is not None else None
        exchange.target = target = pick(exchange.tried, key)
        entered = hooks.begin(target.instance_id) if hooks is not None else None
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            self.sent.append((target, connect_timeout, response_timeout))
            headers = Headers([(b"X-Path", exchange.request.path.encode())])
            return Response(200, headers, b"ok")
        finally:
            if hooks is not None:
                hooks.outcome(target.instance_id, True)
                hooks.release(target.instance_id, entered)


def gateway_parts(
    text: str, forwarder: RecordingForwarder
) -> tuple[Dispatcher, RouteStack, ServiceRuntimes, StaticRegistry]:
    rng = random.Random(5)
    runtimes = ServiceRuntimes(rng=rng)
    registry = StaticRegistry(
        {"svc": [ServiceInstance("svc", f"svc-{i}", "127.0.0.1", 9000 + i) for i in range(2)]}
    )
    dispatcher = Dispatcher(RouteTable(()))
    stack = RouteStack(
        registry=registry,
        forwarder=forwarder,
        runtimes=runtimes,
        forward=dispatcher.forward,
        rng=rng,
    )

    def context() -> BuildContext:
        return BuildContext(
            rng=rng, weights=WeightGroups(rng), runtimes=runtimes, forward=dispatcher.forward
        )

    dispatcher.table = stack.table(routes_of(text, context))
    return dispatcher, stack, runtimes, registry


def routes_of(text: str, context: Callable[[], BuildContext]) -> list[Route]:
    predicates, filters = builtin_predicates(), builtin_filters()
    config = parse_text(textwrap.dedent(text), "routes.yml", predicates, filters)
    return build_routes(config, predicates, filters, context)


def exchange(path: str, method: str = "GET") -> Exchange:
    return Exchange(Request(method, path, "", Headers()), "127.0.0.1", 50000, "127.0.0.1", 8080)


async def test_fixed_uri_goes_to_its_address_with_the_route_timeouts() -> None:
    forwarder = RecordingForwarder()
    dispatcher, *_ = gateway_parts(
        """
        routes:
          - id: fixed
            uri: http://127.0.0.1:7000
            predicates: [Path=/a/**]
            filters: [StripPrefix=1]
            metadata: {connect-timeout: 250, response-timeout: 1500}
        """,
        forwarder,
    )
    response = await dispatcher(exchange("/a/b"))
    assert response.status == 200
    assert response.headers.get("X-Path") == "/b"
    [(target, connect, answer)] = forwarder.sent
    assert (target.host, target.port, target.instance_id) == ("127.0.0.1", 7000, None)
    assert (connect, answer) == (0.25, 1.5)


async def test_balanced_route_spreads_over_the_registry() -> None:
    forwarder = RecordingForwarder()
    dispatcher, *_ = gateway_parts(
        "routes:\n  - {id: lb, uri: 'lb://svc', predicates: ['Path=/**']}\n", forwarder
    )
    for _ in range(4):
        assert (await dispatcher(exchange("/x"))).status == 200
    assert {t.instance_id for t, _, _ in forwarder.sent} == {"svc-0", "svc-1"}


async def test_no_route_is_a_json_404() -> None:
    dispatcher, *_ = gateway_parts(
        "routes:\n  - {id: a, uri: 'http://127.0.0.1:1', predicates: ['Path=/a']}\n",
        RecordingForwarder(),
    )
    response = await dispatcher(exchange("/nowhere"))
    assert response.status == 404
    assert isinstance(response.body, bytes)
    assert json.loads(response.body)["path"] == "/nowhere"


async def test_no_instance_is_a_503() -> None:
    dispatcher, *_ = gateway_parts(
        "routes:\n  - {id: gone, uri: 'lb://missing', predicates: ['Path=/**']}\n",
        RecordingForwarder(),
    )
    assert (await dispatcher(exchange("/x"))).status == 503


async def test_bulkhead_cap_comes_from_the_table_and_a_rebuild_removes_it() -> None:
    text = (
        "routes:\n  - id: capped\n    uri: 'lb://svc'\n    predicates: ['Path=/**']\n"
        "    metadata: {max-concurrent: 1}\n"
    )
    forwarder = RecordingForwarder(delay=0.05)
    dispatcher, stack, runtimes, _ = gateway_parts(text, forwarder)
    first = asyncio.ensure_future(dispatcher(exchange("/1")))
    await asyncio.sleep(0.01)
    shed = await dispatcher(exchange("/2"))
    assert shed.status == 503
    assert shed.headers.get("Retry-After") == "1"
    assert (await first).status == 200
    uncapped = "routes:\n  - {id: capped, uri: 'lb://svc', predicates: ['Path=/**']}\n"
    dispatcher.table = stack.table(routes_of(uncapped, BuildContext))
    assert runtimes.get("svc").bulkhead is None


async def test_deadline_bounds_the_route_with_a_504() -> None:
    forwarder = RecordingForwarder(delay=1.0)
    dispatcher, *_ = gateway_parts(
        "routes:\n  - id: slow\n    uri: 'lb://svc'\n    predicates: ['Path=/**']\n"
        "    metadata: {deadline: 20}\n",
        forwarder,
    )
    assert (await dispatcher(exchange("/x"))).status == 504
    assert forwarder.sent == []


async def test_forward_uri_re_dispatches_at_its_path() -> None:
    forwarder = RecordingForwarder()
    dispatcher, *_ = gateway_parts(
        """
        routes:
          - {id: entry, uri: 'forward:/inner', predicates: ['Path=/outer']}
          - {id: inner, uri: 'http://127.0.0.1:7001', predicates: ['Path=/inner']}
        """,
        forwarder,
    )
    response = await dispatcher(exchange("/outer"))
    assert response.status == 200
    assert forwarder.sent[0][0].port == 7001


async def test_a_forward_loop_stops_after_max_forwards() -> None:
    dispatcher, *_ = gateway_parts(
        "routes:\n  - {id: loop, uri: 'forward:/loop', predicates: ['Path=/loop']}\n",
        RecordingForwarder(),
    )
    request = exchange("/loop")
    assert (await dispatcher(request)).status == 500
    assert request.forwards == MAX_FORWARDS + 1


async def test_response_filters_leave_a_committed_response_be() -> None:
    # As in SCG: RedirectTo commits its answer (setComplete), a forwarded-to route wrote its
    # own, so the routes' AddResponseHeader adds nothing to either; SetStatus's answer on a
    # no://op route is not committed and gets it.
    dispatcher, *_ = gateway_parts(
        """
        default-filters: ['AddResponseHeader=X-Default, on']
        routes:
          - id: redirect
            uri: no://op
            predicates: [Path=/redirect]
            filters: ['AddResponseHeader=X-Own, on', 'RedirectTo=302, https://example.org']
          - id: status
            uri: no://op
            predicates: [Path=/status]
            filters: [SetStatus=418]
          - {id: entry, uri: 'forward:/inner', predicates: ['Path=/outer']}
          - {id: inner, uri: 'http://127.0.0.1:7001', predicates: ['Path=/inner']}
        """,
        RecordingForwarder(),
    )
    redirected = await dispatcher(exchange("/redirect"))
    assert (redirected.status, redirected.headers.get("Location")) == (302, "https://example.org")
    assert redirected.headers.get("X-Default") is None and redirected.headers.get("X-Own") is None
    status = await dispatcher(exchange("/status"))
    assert (status.status, status.headers.get("X-Default")) == (418, "on")
    forwarded = await dispatcher(exchange("/outer"))
    assert forwarded.headers.get_all("X-Default") == ["on"]  # the inner route's, once
