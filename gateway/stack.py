"""The stack builder: the one place a route's request path is assembled, at load time.

The positions, outer to inner (``dispatch.py`` holds 2 and 3, once per table; the engine 1):
     1. engine          parsed request head -> ``Exchange`` (``engine/request_head.py``)
     2. error mapping   every failure becomes one JSON response (``Dispatcher.__call__``)
     3. route match     the compiled table picks the route (``RouteTable.match``)
     5. deadline        the whole request, retries and fallbacks included
     4. route filters   SCG order; Retry (6) and CircuitBreaker are filters, placed as in SCG
     6. hedging         a second attempt races a slow first (retry's sibling)
     7. load balance    the forwarder's ``pick``: registry snapshot, ejected and tried skipped
     8. per instance    bulkhead, in-flight count, outlier accounting (``AttemptHooks``)
     9. per-try timeout connect / response timeouts, enforced by the pool's sweeps
    10. forwarder       the only code that talks to sockets
Each layer is an async callable wrapping the next, built once per route, never per request.
A coroutine hop costs about a microsecond, so a route's chain holds only the layers it has work
for: positions 7-10 are one ``partial`` of the forwarder (no frame of their own), and a run of
synchronous filters folds into one layer. A route with SCG's header/path filters is two frames.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

from discovery.registry import ServiceRegistry
from gateway.exchange import Exchange, Handler, Response, Target
from gateway.extension import GatewayFilter, InternalForward, SyncFilter, WrappingFilter
from gateway.forwarder import FixedTarget, Forwarder, Pick
from gateway.hash_key import key_extractor
from gateway.routing.metadata import RoutePolicy
from gateway.routing.route import Route, RouteUri
from gateway.routing.table import RouteTable
from resilience.balancer.base import LoadBalancer
from resilience.balancer.factory import BalancerSpec, make_balancer
from resilience.deadline import within
from resilience.hedge import hedged
from resilience.picker import InstancePicker
from resilience.runtime import AttemptHooks, ServiceRuntimes

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class RouteStack:
    """Builds the chains of a route table. Kept for the gateway's life, so balancers (weighted
    and round-robin positions, hash rings) and per-service runtimes survive reloads."""

    def __init__(
        self,
        *,
        registry: ServiceRegistry,
        forwarder: Forwarder,
        runtimes: ServiceRuntimes,
        forward: InternalForward,
        rng: random.Random,
        local_zone: str | None = None,
    ) -> None:
        self._registry = registry
        self._forwarder = forwarder
        self._runtimes = runtimes
        self._forward = forward
        self._rng = rng
        self._local_zone = local_zone
        self._balancers: dict[tuple[str, BalancerSpec | None], LoadBalancer] = {}

    def table(self, routes: Sequence[Route]) -> RouteTable:
        """Every route with its chain, as one table. Services' concurrency caps are collected
        while building and applied together, so a reload can raise or remove a cap."""
        self._runtimes.begin_build()
        compiled = [replace(route, handler=self.build(route)) for route in routes]
        self._runtimes.commit_build()
        return RouteTable(compiled)

    def build(self, route: Route) -> Handler:
        policy = route.policy  # parsed once, when the route was built
        uri = route.uri
        endpoint: Handler
        if uri.is_forward:
            # 10'. forward:/path: re-dispatch inside the gateway instead of a socket.
            endpoint = partial(self._forward, uri.path)
        else:
            # 7-10. one partial of the forwarder: pick (balance), account (per instance),
            # bounded by the per-try timeouts; no frame of its own.
            pick, hooks = self._pick(uri, policy)
            hash_on = policy.balancer.hash_on if policy.balancer is not None else None
            endpoint = partial(
                self._forwarder.forward,
                pick,
                key_extractor(hash_on) if hash_on else None,
                policy.connect_timeout,
                policy.response_timeout,
                hooks,
            )
            if policy.hedge_delay is not None and uri.service is not None:
                # 6. hedging just above the forwarder: each hedge is one more attempt.
                endpoint = hedging(endpoint, policy.hedge_delay)
        # 4. route filters in SCG order; Retry sits wherever the route lists it (above
        # balancing, so every attempt re-picks), CircuitBreaker likewise.
        handler = wrap_filters(route.filters, endpoint)
        if policy.deadline is not None:
            # 5. outside the filters: the deadline bounds retries and fallbacks too.
            handler = with_deadline(handler, policy.deadline)
        return handler

    def _pick(self, uri: RouteUri, policy: RoutePolicy) -> tuple[Pick, AttemptHooks | None]:
        service = uri.service
        if service is None:
            return FixedTarget(Target(uri.host, uri.port, uri.secure)).pick, None
        runtime = self._runtimes.get(service)
        if policy.max_concurrent is not None:
            self._runtimes.want_limit(service, policy.max_concurrent)
        spec = policy.balancer
        if spec is not None and spec.policy == "least_request":
            runtime.track_active = True  # the balancer reads in-flight counts
        picker = InstancePicker(
            service,
            self._registry.instances,
            runtime,
            self._balancer(service, spec),
            policy.max_per_instance,
        )
        return picker.pick, AttemptHooks(runtime, picker.count)

    def _balancer(self, service: str, spec: BalancerSpec | None) -> LoadBalancer:
        """One balancer per service and policy, kept across reloads."""
        balancer = self._balancers.get((service, spec))
        if balancer is None:
            balancer = make_balancer(
                spec or BalancerSpec(),
                rng=self._rng,
                active=self._runtimes.get(service).active,
                local_zone=self._local_zone,
            )
            self._balancers[(service, spec)] = balancer
        return balancer


def fold_sync(filters: Sequence[SyncFilter], inner: Handler) -> Handler:
    """One layer for a run of synchronous filters: pres in order, inner, posts in reverse."""
    pres = [(i, f.pre) for i, f in enumerate(filters) if f.has_pre]
    posts = [(i, f.post) for i, f in enumerate(filters) if f.has_post]
    posts.reverse()

    async def layer(exchange: Exchange) -> Response:
        reached = len(filters)
        response: Response | None = None
        for index, pre in pres:
            response = pre(exchange)
            if response is not None:
                reached = index
                break
        if response is None:
            response = await inner(exchange)
        for index, post in posts:
            if index <= reached:
                post(exchange, response)
        return response

    return layer


def wrap_filters(filters: Sequence[GatewayFilter], inner: Handler) -> Handler:
    handler = inner
    run: list[SyncFilter] = []
    # Build from the innermost (last) filter outwards.
    for gateway_filter in reversed(filters):
        if isinstance(gateway_filter, SyncFilter):
            run.append(gateway_filter)
            continue
        if run:
            handler = fold_sync(list(reversed(run)), handler)
            run = []
        assert isinstance(gateway_filter, WrappingFilter)
        handler = gateway_filter.wrap(handler)
    if run:
        handler = fold_sync(list(reversed(run)), handler)
    return handler


def with_deadline(inner: Handler, seconds: float) -> Handler:
    """Route metadata ``deadline``: the response head within ``seconds``, or a 504 (the error
    mapping turns ``DeadlineExceeded`` into it)."""

    async def deadline(exchange: Exchange) -> Response:
        return await within(seconds, partial(inner, exchange))

    return deadline


def hedging(attempt: Handler, delay: float) -> Handler:
    """Route metadata ``hedge-delay``, for idempotent bodiless requests: a second attempt goes
    to another instance when the first has no response head after ``delay``."""

    async def hedge(exchange: Exchange) -> Response:
        if exchange.body is not None or exchange.upgrade is not None:
            return await attempt(exchange)
        if exchange.request.method not in IDEMPOTENT:
            return await attempt(exchange)
        if exchange.tried is None:
            exchange.tried = set()  # the picker sends the second attempt somewhere new
        return await hedged(
            partial(attempt, exchange), delay, failed=_failed, discard=Response.discard
        )

    return hedge


def _failed(response: Response) -> bool:
    return response.status >= 500
