"""The request path as layers, compiled once per route at load time (never per request).

Outer to inner:
    error mapping   — outermost so it sees every failure and maps it to a JSON response once
    route match     — the table decides which compiled chain runs (404 when none)
    route filters   — SCG order; runs of synchronous filters folded into one layer
    target          — static URI, or load balancing over the registry's snapshot for lb://
    forwarder       — the only layer that talks to sockets
Optional layers (deadline, hedging) and the filters that wrap (Retry above balancing,
CircuitBreaker) are placed by ``Dispatcher.compile``; outlier, bulkhead and load accounting
happen around each attempt in the forwarder (``AttemptHooks``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from discovery.registry import ServiceRegistry
from gateway.errors import GatewayError, NoInstancesAvailable, NotFound
from gateway.exchange import Exchange, Handler, Request, Response, Target
from gateway.filters.base import GatewayFilter, SyncFilter, WrappingFilter
from gateway.filters.local_response import json_error
from gateway.forwarder import Forwarder
from gateway.hash_key import key_extractor
from gateway.headers import Headers
from gateway.layers import hedged, with_deadline
from gateway.routing.metadata import RoutePolicy, route_policy, route_timeouts
from gateway.routing.route import Route, RouteUri
from gateway.routing.table import RouteTable
from gateway.service_runtime import (
    TRIED_INSTANCES,
    AttemptHooks,
    ServiceOverloaded,
    ServiceRuntimes,
)
from resilience.balancer.factory import BalancerSpec
from resilience.endpoint import EndpointBalancer

log = logging.getLogger("meshgate.pipeline")

MAX_FORWARDS = 8


def error_response(exchange: Exchange | None, error: GatewayError) -> Response:
    """The one place errors become HTTP: SCG's JSON error body, plus ``message`` for 4xx (the
    client needs to know what to fix; 5xx details stay in the log, not in the response)."""
    status = error.status
    message = error.message if status < 500 else ""
    if exchange is None:
        # Refused before a request existed (unparseable head): no path or id to report.
        exchange = Exchange(Request("", "", "", Headers()), "", 0, "", 0)
    response = json_error(exchange, status, message)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        # Load shedding (a full bulkhead): tell well-behaved clients when to come back.
        response.headers.set("Retry-After", str(max(1, round(retry_after))))
    return response


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


TargetChooser = Callable[[Exchange], Target]

_BALANCER_KEYS = ("load-balancer", "hash-on")


def merge_policy(service: Mapping[str, Any], route: Mapping[str, Any]) -> dict[str, Any]:
    """A route's own settings win over its service's; the balancer (policy and hash key) is
    taken whole from one side, so a route choosing round_robin drops the service's hash key."""
    merged = dict(service)
    if any(key in route for key in _BALANCER_KEYS):
        for key in _BALANCER_KEYS:
            merged.pop(key, None)
    merged.update(route)
    return merged


class Dispatcher:
    """Routes an exchange to its compiled chain. ``table`` is swapped whole on reload, so a
    request sees either the old table or the new one, never a mix."""

    def __init__(
        self,
        table: RouteTable,
        registry: ServiceRegistry,
        balancer_for: Callable[[str, BalancerSpec | None], EndpointBalancer],
        forwarder: Forwarder,
        runtimes: ServiceRuntimes,
    ) -> None:
        self.table = table
        self._registry = registry
        self._balancer_for = balancer_for
        self._forwarder = forwarder
        self._runtimes = runtimes
        # Per-service policy defaults (``services:`` in the route document), read at compile.
        self.service_policies: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None

    async def __call__(self, exchange: Exchange) -> Response:
        try:
            route = self.table.match(exchange)
            if route is None:
                raise NotFound(f"no route for {exchange.request.method} {exchange.request.path}")
            exchange.route = route
            return await route.handler(exchange)
        except GatewayError as error:
            if error.status >= 500:
                log.warning(
                    "%s %s -> %d: %s",
                    exchange.request.method,
                    exchange.request.path,
                    error.status,
                    error.message,
                )
            return error_response(exchange, error)

    async def dispatch(self, exchange: Exchange) -> Response:
        """Route matching without the error boundary (for internal forwards)."""
        route = self.table.match(exchange)
        if route is None:
            raise NotFound(f"no route for {exchange.request.method} {exchange.request.path}")
        exchange.route = route
        return await route.handler(exchange)

    # -- compilation ----------------------------------------------------------------------------
    def compile(self, route: Route) -> Handler:
        """The route's chain. Each ``await`` layer costs about a microsecond, so the endpoint is
        the forwarder's coroutine itself (a ``partial`` adds no frame) and runs of synchronous
        filters fold into one layer: a route with only SCG's header/path filters is two
        frames, the filter layer and the forwarder. Optional layers, outer to inner:
            deadline  — outside the filters: bounds everything, retries included
            filters   — SCG order (Retry, CircuitBreaker are filters here, as in SCG)
            hedging   — just above the forwarder: a second attempt to another instance
            forwarder — picks the instance per attempt (skipping ejected and tried ones)"""
        metadata: Mapping[str, Any] = route.metadata
        service = route.uri.service
        if service is not None and self.service_policies is not None:
            defaults = self.service_policies().get(service)
            if defaults:
                metadata = merge_policy(defaults, metadata)
        policy = route_policy(metadata)  # checked when the route and services were loaded
        if route.uri.is_forward:
            handler = wrap_filters(route.filters, self._forward_endpoint(route.uri))
        else:
            connect_timeout, response_timeout = route_timeouts(route.metadata)
            chooser, hooks = self._target_chooser(route.uri, policy)
            endpoint: Handler = partial(
                self._forwarder.forward, chooser, connect_timeout, response_timeout, hooks
            )
            if policy.hedge_delay is not None and route.uri.service is not None:
                endpoint = hedged(endpoint, policy.hedge_delay)
            handler = wrap_filters(route.filters, endpoint)
        if policy.deadline is not None:
            handler = with_deadline(handler, policy.deadline)
        return handler

    def _target_chooser(
        self, uri: RouteUri, policy: RoutePolicy
    ) -> tuple[TargetChooser, AttemptHooks | None]:
        if uri.service is None:
            target = Target(uri.host, uri.port, uri.secure)
            return (lambda exchange: target), None
        service = uri.service
        runtime = self._runtimes.get(service)
        if policy.max_concurrent is not None:
            self._runtimes.want_limit(service, policy.max_concurrent)
        if policy.max_per_instance is not None or (
            policy.balancer is not None and policy.balancer.policy == "least_request"
        ):
            runtime.track_active = True
        balancer = self._balancer_for(service, policy.balancer)
        hash_on = policy.balancer.hash_on if policy.balancer is not None else None
        key_of = key_extractor(hash_on) if hash_on else None
        per_instance = policy.max_per_instance
        registry = self._registry
        available = runtime.outlier.available
        active = runtime.active

        def balanced(exchange: Exchange) -> Target:
            candidates = available(registry.instances(service))
            tried = exchange.attributes.get(TRIED_INSTANCES)
            if tried:
                # A retry or hedge goes somewhere new when anywhere new is left.
                fresh = [i for i in candidates if i.instance_id not in tried]
                if fresh:
                    candidates = fresh
            if per_instance is not None and candidates:
                candidates = [i for i in candidates if active.count(i.instance_id) < per_instance]
                if not candidates:
                    raise ServiceOverloaded(f"every instance of {service!r} is at its limit")
            instance = balancer.choose(candidates, key_of(exchange) if key_of else None)
            if instance is None:
                raise NoInstancesAvailable(f"no available instance of service {service!r}")
            return Target(
                instance.host, instance.port, instance.secure, instance.instance_id, service
            )

        hooks = AttemptHooks(runtime, lambda: len(registry.instances(service)))
        return balanced, hooks

    def _forward_endpoint(self, uri: RouteUri) -> Handler:
        """``forward:/path``: dispatch again inside the gateway, as SCG forwards to a local
        handler at the URI's path (which replaces the request path)."""
        path = uri.path

        async def forward(exchange: Exchange) -> Response:
            exchange.forwards += 1
            if exchange.forwards > MAX_FORWARDS:
                raise GatewayError(f"forward loop: more than {MAX_FORWARDS} internal forwards")
            exchange.request.path = path
            exchange.uri_variables = {}
            return await self.dispatch(exchange)

        return forward
