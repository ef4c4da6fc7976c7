"""The stack builder: the one place a route's request path is assembled, at load time.

The positions, outer to inner (``dispatch.py`` holds 2 and 3, once per table; the engine 1):
     1. engine          parsed request head -> ``Exchange`` (``engine/request_head.py``)
     2. error mapping   every failure becomes one JSON response (``Dispatcher.__call__``)
     3. route match     the compiled table picks the route (``RouteTable.match``)
     5. deadline        the whole request, retries and fallbacks included
     4. route filters   SCG order; Retry (6) and CircuitBreaker are filters, placed as in SCG
        request URL     SetRequestUri / RequestHeaderToRequestUri (SCG's order 10001, after
                        every route filter) may re-target the request (``Retargeted``)
     6. hedging         a second attempt races a slow first (retry's sibling)
     7. load balance    the forwarder's ``pick``: registry snapshot narrowed to the request's
                        lane (Lane/LaneSplit, or trusted baggage), ejected and tried skipped
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
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import replace
from functools import partial
from typing import Protocol

from discovery.registry import ServiceRegistry
from gateway.errors import BadRequest, GatewayError, NoInstancesAvailable, UpstreamConnectError
from gateway.exchange import Destination, Exchange, Handler, Response, Target
from gateway.extension import GatewayFilter, InternalForward, SyncFilter, WrappingFilter
from gateway.filters.lane import LaneStrict
from gateway.filters.request_uri import SENT_SCHEMES, ChangeRequestUri, RequestUrl
from gateway.forwarder import FixedTarget, Forwarder, Pick
from gateway.hash_key import KeyOf, key_extractor
from gateway.routing.metadata import RoutePolicy
from gateway.routing.route import Route, RouteUri, SendPreview
from gateway.routing.table import RouteTable
from resilience.balancer.base import LoadBalancer
from resilience.balancer.factory import BalancerSpec, make_balancer
from resilience.deadline import within
from resilience.hedge import hedged
from resilience.picker import InstancePicker
from resilience.runtime import AttemptHooks, ServiceRuntimes


class Forward(Protocol):
    """``Forwarder.forward``."""

    def __call__(
        self,
        pick: Pick,
        key_of: KeyOf | None,
        connect_timeout: float | None,
        response_timeout: float | None,
        hooks: AttemptHooks | None,
        exchange: Exchange,
        request_target: str | None = None,
        /,
    ) -> Awaitable[Response]: ...


# Where a route would send now, moving no state: ``(key, lane) -> destination``.
Preview = Callable[[Hashable | None, str | None], Destination]

# The pick of an ``lb://`` service a request names; None when the registry has no instance.
PickService = Callable[[str], "tuple[Pick, AttemptHooks | None] | None"]

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
        compiled = [
            replace(route, handler=handler, send=send)
            for route in routes
            for handler, send in (self.compile(route),)
        ]
        self._runtimes.commit_build()
        return RouteTable(compiled)

    def build(self, route: Route) -> Handler:
        return self.compile(route)[0]

    def compile(self, route: Route) -> tuple[Handler, SendPreview | None]:
        """The route's chain, and how its endpoint picks where to send (the explain API's
        view; None for forward: and no://op)."""
        policy = route.policy  # parsed once, when the route was built
        uri = route.uri
        filters = route.chain_filters  # its own, and the global filters settings turn on
        # LaneStrict changes how the route picks (a lane without instances is a 503, not a
        # fallback to stable): read now, and no layer of its own.
        strict = any(isinstance(f, LaneStrict) for f in filters)
        if strict:
            filters = tuple(f for f in filters if not isinstance(f, LaneStrict))
        endpoint: Handler
        send: SendPreview | None = None
        if uri.is_forward:
            # 10'. forward:/path: re-dispatch inside the gateway instead of a socket.
            endpoint = partial(self._forward, uri.path)
        elif uri.is_noop:
            # no://op: the route's filters answer; when none does, SCG's empty 200.
            endpoint = not_routed
        else:
            # 7-10. one partial of the forwarder: pick (balance), account (per instance),
            # bounded by the per-try timeouts; no frame of its own.
            pick, hooks, preview = self._picker(uri, policy, strict=strict)
            hash_on = policy.balancer.hash_on if policy.balancer is not None else None
            key_of = key_extractor(hash_on) if hash_on else None
            send = SendPreview(
                preview,
                key_of,
                (policy.balancer or BalancerSpec()).policy if uri.service is not None else None,
                strict,
            )
            endpoint = partial(
                self._forwarder.forward,
                pick,
                key_of,
                policy.connect_timeout,
                policy.response_timeout,
                hooks,
            )
            if policy.hedge_delay is not None and uri.service is not None:
                # 6. hedging just above the forwarder: each hedge is one more attempt.
                endpoint = hedging(endpoint, policy.hedge_delay)
        changes = [f for f in filters if isinstance(f, ChangeRequestUri)]
        if changes:
            # 7'. SetRequestUri / RequestHeaderToRequestUri run at SCG's order 10001, after
            # every route filter: out of the chain, asked just before sending.
            # An lb:// service a template names outright is set up now, with the table.
            named = (c.constant for c in changes)
            services = {
                url.host.casefold(): self._pick(_service_uri(url.host), policy, strict=strict)
                for url in named
                if url is not None and url.scheme == "lb"
            }
            endpoint = Retargeted(
                tuple(changes),
                endpoint,
                self._forwarder.forward,
                partial(self._service_pick, policy, strict),
                policy,
                services,
            ).__call__
            filters = tuple(f for f in filters if not isinstance(f, ChangeRequestUri))
        # 4. route filters in SCG order; Retry sits wherever the route lists it (above
        # balancing, so every attempt re-picks), CircuitBreaker likewise.
        handler = wrap_filters(filters, endpoint)
        if policy.deadline is not None:
            # 5. outside the filters: the deadline bounds retries and fallbacks too.
            handler = with_deadline(handler, policy.deadline)
        return handler, send

    def _pick(
        self, uri: RouteUri, policy: RoutePolicy, *, building: bool = True, strict: bool = False
    ) -> tuple[Pick, AttemptHooks | None]:
        pick, hooks, _ = self._picker(uri, policy, building=building, strict=strict)
        return pick, hooks

    def _picker(
        self, uri: RouteUri, policy: RoutePolicy, *, building: bool = True, strict: bool = False
    ) -> tuple[Pick, AttemptHooks | None, Preview]:
        """The route's pick, its attempt hooks and its pick's stateless preview.
        ``building``: called while a table is built, so the route's concurrency cap is
        collected for its service (a service first met by a request gets none). ``strict``:
        the route has LaneStrict."""
        service = uri.service
        if service is None:
            fixed = FixedTarget(Target(uri.host, uri.port, uri.secure)).pick
            return fixed, None, partial(fixed, None)
        runtime = self._runtimes.get(service)
        if policy.max_concurrent is not None and building:
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
            strict_lanes=strict,
        )
        return picker.pick, AttemptHooks(runtime, picker.count), picker.preview

    def _service_pick(
        self, policy: RoutePolicy, strict: bool, service: str
    ) -> tuple[Pick, AttemptHooks | None] | None:
        """The pick of an ``lb://`` service a request first names (``lb://{name}``); None when
        the registry has no instance of it, so a request cannot make the gateway keep state for
        any name it likes."""
        if not self._registry.instances(service):
            return None
        return self._pick(_service_uri(service), policy, building=False, strict=strict)

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


async def not_routed(exchange: Exchange) -> Response:
    """What SCG 5.0.4 answers when no routing filter takes the request URL (``no://op``, or a
    URL re-targeted to a scheme nothing sends to): the response as the filters left it, which
    is an empty 200 when none answered. The request body is not read."""
    return Response(200)


class Retargeted:
    """The endpoint of a route with SetRequestUri / RequestHeaderToRequestUri: the last URL
    they name, if any, replaces where the route sends (``fallback`` otherwise)."""

    __slots__ = (
        "_changes",
        "_fallback",
        "_forward",
        "_key_of",
        "_pick_service",
        "_policy",
        "_services",
    )

    def __init__(
        self,
        changes: tuple[ChangeRequestUri, ...],
        fallback: Handler,
        forward: Forward,
        pick_service: PickService,
        policy: RoutePolicy,
        services: dict[str, tuple[Pick, AttemptHooks | None]],
    ) -> None:
        """``services``: the picks of the ``lb://`` services set up so far, by case-folded id
        (as the registries compare ids); ``pick_service`` makes one for a service a request
        names first."""
        self._changes = changes
        self._fallback = fallback
        self._forward = forward
        self._pick_service = pick_service
        self._policy = policy
        hash_on = policy.balancer.hash_on if policy.balancer is not None else None
        self._key_of: KeyOf | None = key_extractor(hash_on) if hash_on else None
        self._services = services

    async def __call__(self, exchange: Exchange) -> Response:
        url: RequestUrl | None = None
        for change in self._changes:
            found = change.request_url(exchange)
            if found is not None:
                url = found
        if url is None:
            return await self._fallback(exchange)
        policy = self._policy
        scheme = url.scheme
        if scheme == "lb":
            # SCG's load-balancer filter: an instance of the service, the request's own path.
            pick, hooks = self._service(url)
            return await self._forward(
                pick,
                self._key_of,
                policy.connect_timeout,
                policy.response_timeout,
                hooks,
                exchange,
            )
        if scheme not in SENT_SCHEMES:
            if scheme == "forward":
                raise GatewayError(f"cannot forward to {url.raw!r} from a request URL filter")
            return await not_routed(exchange)
        if not url.host or not url.port_valid:
            raise GatewayError(f"cannot send the request to {url.raw!r}: no host or port")
        if url.userinfo:
            # SCG's client takes "user@host" for the host name and fails to resolve it.
            raise UpstreamConnectError(f"cannot send the request to {url.raw!r}: user info")
        websocket = scheme in ("ws", "wss")
        if websocket and exchange.upgrade is None:
            # The body of a 4xx says its message: the route's URL (an internal address) stays out.
            raise BadRequest("the route sends to a WebSocket URL; the request is no upgrade")
        secure = scheme in ("https", "wss")
        target = Target(url.host, url.port or (443 if secure else 80), secure)
        return await self._forward(
            FixedTarget(target).pick,
            None,
            policy.connect_timeout,
            policy.response_timeout,
            None,
            exchange,
            url.target,
        )

    def _service(self, url: RequestUrl) -> tuple[Pick, AttemptHooks | None]:
        key = url.host.casefold()
        found = self._services.get(key)
        if found is None:
            made = self._pick_service(url.host) if url.host else None
            if made is None:
                raise NoInstancesAvailable(f"Unable to find instance for {url.host}")
            found = self._services[key] = made
        return found


def _service_uri(service: str) -> RouteUri:
    return RouteUri(raw="lb://" + service, scheme="lb", service=service)


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
        if response.committed:
            return response
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
