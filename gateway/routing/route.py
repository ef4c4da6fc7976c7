"""A built route: its definition plus the compiled predicate, filters and handler chain."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway.config.schema import RouteDefinition
from gateway.errors import ConfigError
from gateway.exchange import Destination, Exchange, Handler
from gateway.extension import GatewayFilter, Predicate
from gateway.routing.metadata import RoutePolicy

_SCHEMES = {"http", "https", "ws", "wss", "lb", "forward"}


@dataclass(frozen=True, slots=True)
class RouteUri:
    """A route's ``uri``. For ``lb://svc`` and ``lb:ws://svc``, ``service`` is set and host/port
    come from the chosen instance; for ``forward:/path`` only ``path`` matters. ``no://op`` is
    SCG's idiom for a route its own filters answer (RedirectTo, SetStatus) or re-target
    (SetRequestUri): nothing is sent to it, and a request nothing answers gets SCG's empty
    200."""

    raw: str
    scheme: str  # http, https, ws, wss, lb, forward, no
    host: str = ""
    port: int = 0
    path: str = ""
    service: str | None = None
    # For lb: the scheme to use towards the instance (ws for lb:ws://, else http/https per instance)
    websocket: bool = False

    @property
    def is_lb(self) -> bool:
        return self.service is not None

    @property
    def is_forward(self) -> bool:
        return self.scheme == "forward"

    @property
    def is_noop(self) -> bool:
        return self.scheme == "no"

    @property
    def secure(self) -> bool:
        return self.scheme in ("https", "wss")

    @classmethod
    def parse(cls, raw: str) -> RouteUri:
        text = raw.strip()
        if text.startswith("forward:"):
            path = text[len("forward:") :]
            if path.startswith("//"):
                path = urlsplit(text).path or "/"
            if not path.startswith("/"):
                raise ConfigError(f"forward: URI must name an absolute path, got {raw!r}")
            return cls(raw=raw, scheme="forward", path=path)
        if text[:3].lower() == "no:":
            # SCG sends nothing for a scheme no routing filter handles; ``no://op`` is how
            # routes spell that. What follows the scheme is not read (Java's URI needs some).
            if len(text) == 3:
                raise ConfigError(f"URI {raw!r} is not a URI: write no://op")
            return cls(raw=raw, scheme="no")
        websocket = False
        if text.startswith("lb:ws://") or text.startswith("lb:wss://"):
            websocket = True
            text = "lb://" + text.split("://", 1)[1]
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ConfigError(
                f"unsupported URI scheme {parts.scheme!r} in {raw!r} "
                "(use http, https, ws, wss, lb, lb:ws or forward)"
            )
        if not parts.hostname:
            raise ConfigError(f"URI {raw!r} has no host")
        if scheme == "lb":
            # The service id as written (``hostname`` lower-cases it): SCG keeps it, and the
            # registries compare ids case-insensitively, as Consul's catalog does.
            service = parts.netloc.rpartition("@")[2].partition(":")[0]
            return cls(raw=raw, scheme="lb", service=service, websocket=websocket)
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"URI {raw!r} has an invalid port") from exc
        default_port = 443 if scheme in ("https", "wss") else 80
        return cls(
            raw=raw,
            scheme=scheme,
            host=parts.hostname,
            port=port or default_port,
            path=parts.path,
            websocket=scheme in ("ws", "wss"),
        )


@dataclass(frozen=True, slots=True)
class SendPreview:
    """How a built route sends, for the explain API. ``choose(key, lane)`` answers with the
    destination the route would send a request to now (the balancer's next pick for an
    ``lb://`` route) and moves no state; ``hash_key`` reads a consistent-hash route's key from
    a request; ``balancer`` names the policy (None: a fixed address)."""

    choose: Callable[[Hashable | None, str | None], Destination]
    hash_key: Callable[[Exchange], str | None] | None = None
    balancer: str | None = None
    strict_lanes: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    id: str
    uri: RouteUri
    order: int
    predicates: tuple[Predicate, ...]
    filters: tuple[GatewayFilter, ...]
    metadata: Mapping[str, Any]
    definition: RouteDefinition
    # The route's metadata merged over its service's policy (``services:``), parsed once.
    policy: RoutePolicy = field(default_factory=RoutePolicy)
    # The first Path pattern, for ``http.route`` on spans.
    pattern: str | None = None
    # The compiled chain (``stack.RouteStack.build``), set once the table is assembled.
    handler: Handler = field(repr=False, default=None)  # type: ignore[assignment]
    # How the chain's endpoint picks where to send (None: forward:, no://op, or not built).
    send: SendPreview | None = field(repr=False, default=None)
    # SCG's global filters a setting turns on for every route (the global response cache):
    # in the chain, but not among the route's own ``filters`` (what the actuator lists).
    global_filters: tuple[GatewayFilter, ...] = ()

    @property
    def services(self) -> set[str]:
        """The ``lb://`` services this route may send to: its URI's and its filters'."""
        found = {s for f in self.filters for s in f.services}
        if self.uri.service is not None:
            found.add(self.uri.service)
        return found

    @property
    def chain_filters(self) -> tuple[GatewayFilter, ...]:
        """``filters`` with ``global_filters`` merged in as SCG sorts them: a global filter
        runs before every route filter whose order is not lower than its own (a filter
        without an order of its own counts as 1, the lowest place order)."""
        if not self.global_filters:
            return self.filters
        merged = list(self.filters)
        for extra in self.global_filters:
            wanted = extra.order if extra.order is not None else 0
            at = next(
                (i for i, f in enumerate(merged) if (1 if f.order is None else f.order) >= wanted),
                len(merged),
            )
            merged.insert(at, extra)
        return tuple(merged)
