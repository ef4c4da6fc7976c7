"""Route metadata the gateway itself reads, parsed and checked once when the route is built:
SCG's ``connect-timeout`` / ``response-timeout`` (ms; ``response-timeout: -1``, any negative
value in SCG, turns the response timeout off for the route), and ours — ``load-balancer``,
``hash-on``, ``max-concurrent``, ``max-concurrent-per-instance``, ``deadline`` (ms) and
``hedge-delay`` (ms). SCG's ``cors`` is checked here too; the CORS table of a whole build
(every route's ``cors`` plus ``globalcors``) is ``with_cors``'s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import Field, dataclass, replace
from typing import Any, ClassVar, Protocol, TypeVar

from gateway.config.cors import CorsConfiguration, parse_route_cors
from gateway.cors import ALL_PATHS, CorsPolicy
from gateway.errors import ConfigError
from resilience.balancer.factory import BalancerSpec, balancer_of
from resilience.counts import positive_int
from resilience.durations import parse_millis

TIMEOUT_KEYS = ("connect-timeout", "response-timeout")
_BALANCER_KEYS = ("load-balancer", "hash-on")


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """Everything the stack reads from a route's metadata, parsed once when the route is
    built. A value that is not valid is a config error, never a silent default."""

    connect_timeout: float | None = None  # seconds; None: the gateway's
    response_timeout: float | None = None  # math.inf: none at all (``response-timeout: -1``)
    balancer: BalancerSpec | None = None  # None: the service's default (round robin)
    max_concurrent: int | None = None  # per service (the bulkhead)
    max_per_instance: int | None = None
    deadline: float | None = None  # seconds, the whole request including retries
    hedge_delay: float | None = None  # seconds
    cors_config: CorsConfiguration | None = None  # the route's own ``metadata.cors``
    # The CORS table in force for the requests this route matches: the same object on every
    # route of one build (``with_cors``); None when the build has no CORS at all.
    cors: CorsPolicy | None = None


def _positive_int(metadata: Mapping[str, Any], key: str) -> int | None:
    value = metadata.get(key)
    if value is None:
        return None
    number = positive_int(value)
    if number is None:
        raise ConfigError(f"metadata {key}: expected a positive integer, got {value!r}")
    return number


def _millis(
    metadata: Mapping[str, Any], key: str, *, negative_is_off: bool = False
) -> float | None:
    value = metadata.get(key)
    if value is None:
        return None
    try:
        return parse_millis(value, negative_is_off=negative_is_off)
    except ValueError as exc:
        raise ConfigError(f"metadata {key}: {exc}") from None


def merge_policy(service: Mapping[str, Any], route: Mapping[str, Any]) -> dict[str, Any]:
    """A route's own settings win over its service's (``services:``); the balancer (policy
    and hash key) is taken whole from one side, so a route choosing round_robin drops the
    service's hash key."""
    merged = dict(service)
    if any(key in route for key in _BALANCER_KEYS):
        for key in _BALANCER_KEYS:
            merged.pop(key, None)
    merged.update(route)
    return merged


def route_policy(metadata: Mapping[str, Any]) -> RoutePolicy:
    # SCG's, checked first. A negative connect-timeout is no "off" in SCG: Netty refuses it
    # (it logs the rejected option and connects with its default), so it stays an error here.
    connect = _millis(metadata, "connect-timeout")
    response = _millis(metadata, "response-timeout", negative_is_off=True)
    balancer: BalancerSpec | None = None
    policy = metadata.get("load-balancer")
    hash_on = metadata.get("hash-on")
    if policy is not None or hash_on is not None:
        try:
            balancer = balancer_of(policy, hash_on)
        except ValueError as exc:
            raise ConfigError(f"metadata load-balancer: {exc}") from exc
    return RoutePolicy(
        connect_timeout=connect,
        response_timeout=response,
        balancer=balancer,
        max_concurrent=_positive_int(metadata, "max-concurrent"),
        max_per_instance=_positive_int(metadata, "max-concurrent-per-instance"),
        deadline=_millis(metadata, "deadline"),
        hedge_delay=_millis(metadata, "hedge-delay"),
        cors_config=_cors(metadata),
    )


def _cors(metadata: Mapping[str, Any]) -> CorsConfiguration | None:
    # SCG's listener reads the key only when it holds something.
    raw = metadata.get("cors")
    return None if raw is None else parse_route_cors(raw)


class CorsRoute(Protocol):
    """What the CORS table reads of a built route (``routing.route.Route``)."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def order(self) -> int: ...

    @property
    def pattern(self) -> str | None: ...

    @property
    def policy(self) -> RoutePolicy: ...


_R = TypeVar("_R", bound=CorsRoute)


def build_cors_policy(
    global_cors: Iterable[tuple[str, CorsConfiguration]], routes: Iterable[CorsRoute]
) -> CorsPolicy | None:
    """SCG's CORS table from ``globalcors`` (``SpringSettings.cors``) and the routes: each
    route's ``metadata.cors`` under its first Path pattern (``/**`` without one), in route
    order (``order``, then as written), before the global patterns. None: no CORS."""
    own: list[tuple[str, CorsConfiguration]] = []
    for route in sorted(routes, key=lambda route: route.order):  # stable, as SCG sorts
        config = route.policy.cors_config
        if config is not None:
            own.append((route.pattern or ALL_PATHS, config))
    return CorsPolicy.of(own, global_cors)


def with_cors(
    routes: Sequence[_R], global_cors: Iterable[tuple[str, CorsConfiguration]]
) -> list[_R]:
    """The routes of one build, each carrying the build's CORS table (unchanged when there is
    none, so a gateway without CORS pays nothing per request). The table travels with the
    routes, so a reload swaps it together with the route table."""
    policy = build_cors_policy(global_cors, routes)
    if policy is None:
        return list(routes)
    return [replace(route, policy=replace(route.policy, cors=policy)) for route in routes]
