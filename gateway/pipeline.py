"""The request path as layers, compiled once per route at load time (never per request).

Outer to inner:
    error mapping   — outermost so it sees every failure and maps it to a JSON response once
    route match     — the table decides which compiled chain runs (404 when none)
    route filters   — SCG order; runs of synchronous filters folded into one layer
    target          — static URI, or load balancing over the registry's snapshot for lb://
    forwarder       — the only layer that talks to sockets
Seams for later layers (deadline, retry above balancing, breaker/outlier below it, per-try
timeout) sit between "route filters" and "forwarder" in ``compile_route``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial

from discovery.registry import ServiceRegistry
from gateway.errors import GatewayError, NoInstancesAvailable, NotFound
from gateway.exchange import Exchange, Handler, Request, Response, Target
from gateway.filters.base import GatewayFilter, SyncFilter, WrappingFilter
from gateway.filters.local_response import json_error
from gateway.forwarder import Forwarder
from gateway.headers import Headers
from gateway.routing.metadata import route_timeouts
from gateway.routing.route import Route, RouteUri
from gateway.routing.table import RouteTable
from resilience.balancer.base import LoadBalancer

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
    return json_error(exchange, status, message)


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


class Dispatcher:
    """Routes an exchange to its compiled chain. ``table`` is swapped whole on reload, so a
    request sees either the old table or the new one, never a mix."""

    def __init__(
        self,
        table: RouteTable,
        registry: ServiceRegistry,
        balancer_for: Callable[[str], LoadBalancer],
        forwarder: Forwarder,
    ) -> None:
        self.table = table
        self._registry = registry
        self._balancer_for = balancer_for
        self._forwarder = forwarder

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
        frames, the filter layer and the forwarder."""
        if route.uri.is_forward:
            return wrap_filters(route.filters, self._forward_endpoint(route.uri))
        connect_timeout, response_timeout = route_timeouts(route.metadata)  # checked at build
        endpoint = partial(
            self._forwarder.forward,
            self._target_chooser(route.uri),
            connect_timeout,
            response_timeout,
        )
        return wrap_filters(route.filters, endpoint)

    def _target_chooser(self, uri: RouteUri) -> TargetChooser:
        if uri.service is None:
            target = Target(uri.host, uri.port, uri.secure)
            return lambda exchange: target
        service = uri.service
        balancer = self._balancer_for(service)
        registry = self._registry

        def balanced(exchange: Exchange) -> Target:
            instance = balancer.choose(registry.instances(service))
            if instance is None:
                raise NoInstancesAvailable(f"no available instance of service {service!r}")
            return Target(
                instance.host, instance.port, instance.secure, instance.instance_id, service
            )

        return balanced

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
