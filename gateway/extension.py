"""The extension API: what a predicate or filter factory is given and what it must return.

Built-in predicates and filters and third-party ones (registered through the
``meshgate.predicates`` / ``meshgate.filters`` entry-point groups) use exactly this module, so
they share argument parsing (``Args``), shortcut forms (``ShortcutType``), located config errors
(raise ``ConfigError`` or call ``args.fail``) and the actuator's description text.

Two filter shapes:
- ``SyncFilter``: edits the request before forwarding and/or the response after it, with no
  await. The stack folds a run of them into one layer (pres in order, the inner handler, posts
  in reverse), because a coroutine hop per filter would cost more than the work.
- ``WrappingFilter``: must await (rate limit, breaker, retry), so it becomes a layer of its own
  around the rest of the route's chain.

This module sits below routing and above config: it imports only config, the exchange,
``resilience``, ``gateway.mirror.contract`` and ``gateway.security`` (the typed dependencies a
factory may use).
"""

from __future__ import annotations

import copy
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config.args import Args, ShortcutType
from gateway.config.schema import FilterSettings
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Handler, ReplayFactory, Request, Response
from gateway.headers import Headers
from gateway.mirror.contract import MirrorSender
from gateway.security.api_keys import ApiKeySources
from gateway.security.bcrypt_pool import BcryptPool
from gateway.security.jwks import JwksCaches
from resilience.ratelimit.base import RateLimiterFactory
from resilience.runtime import ServiceRuntimes

__all__ = [
    "Args",
    "BuildContext",
    "ConfigError",
    "Exchange",
    "FilterFactory",
    "FilterSettings",
    "GatewayFilter",
    "Handler",
    "Headers",
    "InternalForward",
    "NotPreviewed",
    "Predicate",
    "PredicateFactory",
    "Request",
    "Response",
    "ShortcutType",
    "SyncFilter",
    "Verdict",
    "WeightForecast",
    "WeightGroups",
    "WrappingFilter",
]


# -- predicates ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Verdict:
    """A predicate's answer for one request, with why: what the explain API shows, e.g.
    ``Verdict(False, "path /order/1 does not match /orders/**")``."""

    matched: bool
    reason: str


class Predicate(ABC):
    """Tests a request. Must be cheap and synchronous: it runs for every candidate route.

    A predicate that captures template variables (Path, Host) writes them into
    ``exchange.uri_variables`` only when it returns True.
    """

    @abstractmethod
    def test(self, exchange: Exchange) -> bool: ...

    def path_keys(self) -> frozenset[str] | None:
        """First path segments outside which this predicate can never hold, or None when it
        does not constrain the path. Lets the route table index routes by path."""
        return None

    def route_pattern(self) -> str | None:
        """A low-cardinality name for what the route matches (``http.route`` on spans): the
        Path predicate's first pattern; None for predicates that don't name one."""
        return None

    @abstractmethod
    def describe(self) -> str:
        """The text SCG's actuator shows for this predicate, e.g. ``Paths: [/a/**], match
        trailing slash: true``."""

    def explain(self, exchange: Exchange) -> Verdict:
        """``test``'s answer with the reason (the explain API). Built-ins say what they
        compared; a plugin that does not override this is explained by its description."""
        matched = self.test(exchange)
        return Verdict(matched, f"{self.describe()}: {'holds' if matched else 'does not hold'}")


@dataclass(frozen=True, slots=True)
class PredicateFactory:
    """``name`` is what route config writes (``Path=...``); ``shortcut_fields`` name the
    shortcut form's positional values, as SCG's ``shortcutFieldOrder``."""

    name: str
    shortcut_fields: tuple[str, ...]
    build: Callable[[Args, BuildContext], Predicate]
    shortcut_type: ShortcutType = ShortcutType.DEFAULT


# -- filters ---------------------------------------------------------------------------------------
class GatewayFilter(ABC):
    name: str = ""
    # SCG's Ordered: a filter with an order of its own (LocalResponseCache -4,
    # RemoveJsonAttributesResponseBody -2) sorts by it among the route's filters, which are
    # otherwise ordered by their place in their list (1, 2, ...). None: by place.
    order: int | None = None
    # ``lb://`` services this filter itself may send the request to (SetRequestUri=lb://...):
    # discovery watches them as it watches the route URIs' services.
    services: tuple[str, ...] = ()

    @abstractmethod
    def describe(self) -> str:
        """The text SCG's actuator shows, e.g. ``[AddRequestHeader X-Request-red = 'blue']``."""


class SyncFilter(GatewayFilter):
    """Override ``pre`` and/or ``post``. ``pre`` may return a Response to answer the request
    without forwarding it (later filters and the upstream are skipped; posts of the filters whose
    pre already ran still see the response, unless it is ``committed``: a filter that answers
    as final, as SCG's RedirectTo does with setComplete(), sets that and no post sees it)."""

    def pre(self, exchange: Exchange) -> Response | None:
        return None

    def post(self, exchange: Exchange, response: Response) -> None:
        return None

    def preview(self, exchange: Exchange) -> Response | None:
        """What ``pre`` would do to this exchange, for the explain API: the same, but moving no
        state outside the exchange (a random draw comes from a copy of the generator). A
        filter whose ``pre`` spends something (a rate-limit token) raises ``NotPreviewed``
        saying what it would have done; one whose ``pre`` moves nothing needs no override."""
        return self.pre(exchange)

    @property
    def has_pre(self) -> bool:
        return type(self).pre is not SyncFilter.pre

    @property
    def has_post(self) -> bool:
        return type(self).post is not SyncFilter.post


class NotPreviewed(Exception):
    """Raised by ``SyncFilter.preview`` when the filter cannot be run without moving state;
    the message is what the explain API shows instead."""


class WrappingFilter(GatewayFilter):
    """Wraps the rest of the route's chain: ``await inner(exchange)`` runs it."""

    @abstractmethod
    def wrap(self, inner: Handler) -> Handler: ...


@dataclass(frozen=True, slots=True)
class FilterFactory:
    name: str
    shortcut_fields: tuple[str, ...]
    build: Callable[[Args, BuildContext], GatewayFilter]
    shortcut_type: ShortcutType = ShortcutType.DEFAULT


# -- what factories are given ----------------------------------------------------------------------
class WeightGroups:
    """SCG's Weight predicate: per request, one route of each group is chosen at random in
    proportion to the weights, and only that route's Weight predicate matches.

    The choice is made lazily (only when a Weight predicate is evaluated) and cached on the
    exchange so every route of the group sees the same choice. ``rng`` should be this table's
    own generator: the explain API forecasts the next request's draws from a copy of it, which
    holds only while nothing else draws from it.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._groups: dict[str, list[tuple[str, int]]] = {}
        self._cumulative: dict[str, tuple[list[float], list[str]]] = {}

    def register(self, group: str, route_id: str, weight: int) -> None:
        self._groups.setdefault(group, []).append((route_id, weight))
        self._cumulative.pop(group, None)

    def has(self, group: str) -> bool:
        return group in self._groups

    def share(self, group: str, route_id: str) -> tuple[int, int]:
        """``route_id``'s weight in ``group`` and the group's total weight."""
        members = self._groups.get(group, [])
        weight = sum(w for rid, w in members if rid == route_id)
        return weight, sum(w for _, w in members)

    def _table(self, group: str) -> tuple[list[float], list[str]]:
        table = self._cumulative.get(group)
        if table is None:
            members = self._groups.get(group, [])
            total = sum(w for _, w in members) or 1
            bounds: list[float] = []
            acc = 0.0
            for _, w in members:
                acc += w / total
                bounds.append(acc)
            table = (bounds, [rid for rid, _ in members])
            self._cumulative[group] = table
        return table

    def chosen(self, group: str, exchange: Exchange) -> str | None:
        choices = exchange.weight_choices
        if choices is None:
            choices = exchange.weight_choices = {}
        if group in choices:
            return choices[group]
        pick = choices[group] = self.draw(group, self._rng)
        return pick

    def draw(self, group: str, rng: random.Random) -> str | None:
        """One draw of ``group``'s route from ``rng`` (None: the group has no route)."""
        bounds, ids = self._table(group)
        if not ids:
            return None
        r = rng.random()
        for bound, rid in zip(bounds, ids, strict=True):
            if r < bound:
                return rid
        return ids[-1]

    def forecast_rng(self) -> random.Random:
        """A copy of the generator: its draws are the ones the next requests will get."""
        return copy.copy(self._rng)


class WeightForecast(dict[str, str | None]):
    """An explained request's ``Exchange.weight_choices``: a group not yet chosen is drawn
    when a Weight predicate first asks, as for a real request, but from copies of the groups'
    generators, so the explain API shows the next request's choice and moves nothing."""

    def __init__(self, groups: Iterable[WeightGroups]) -> None:
        super().__init__()
        unique = {id(each): each for each in groups}
        self._draws = [(each, each.forecast_rng()) for each in unique.values()]

    def __contains__(self, group: object) -> bool:
        if isinstance(group, str) and not dict.__contains__(self, group):
            pick: str | None = None
            for weights, rng in self._draws:
                if weights.has(group):
                    pick = weights.draw(group, rng)
                    break
            self[group] = pick
        return dict.__contains__(self, group)


@dataclass(slots=True)
class BuildContext:
    """Handed to every factory. ``route_id`` and ``metadata`` are the route being built."""

    rng: random.Random = field(default_factory=random.Random)
    now: Callable[[], float] = time.time
    route_id: str = ""
    weights: WeightGroups = field(default_factory=lambda: WeightGroups(random.Random()))
    known_services: frozenset[str] = frozenset()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # The ``lb://`` service the route sends to (None: a fixed URI or forward:).
    service: str | None = None
    # The document's global filter settings (SCG's ``filter.*`` and ``set-status.*``).
    filter_settings: FilterSettings = field(default_factory=FilterSettings)
    # What the running gateway gives filters that call upstreams again or elsewhere (Retry,
    # CircuitBreaker); all None when a file is only being validated.
    runtimes: ServiceRuntimes | None = None  # per-service budgets, breakers, settings
    replay_body: ReplayFactory | None = None  # keeps a request body for another attempt
    forward: InternalForward | None = None  # dispatches again inside the gateway
    # RequestRateLimiter's buckets: in Redis (GATEWAY_REDIS_URL) or in process. None when only
    # validating (the filter then checks its arguments against in-process buckets).
    rate_limiters: RateLimiterFactory | None = None
    mirror: MirrorSender | None = None  # sends Mirror filters' copies (gateway.mirror)
    # ApiKey's key sets in Consul KV, watched live (None when only validating), and the
    # threads BasicAuth's bcrypt checks run on (None: each filter makes a pool of its own).
    api_keys: ApiKeySources | None = None
    bcrypt: BcryptPool | None = None
    # JwtAuth's JWKS caches, one per URI, shared by routes and kept across reloads (None when
    # only validating: nothing is fetched).
    jwks: JwksCaches | None = None


InternalForward = Callable[[str, Exchange], Awaitable[Response]]
"""``forward(path, exchange)``: routes the exchange again at ``path`` inside the gateway (a
``forward:`` URI, a CircuitBreaker fallback), bounded against loops."""
