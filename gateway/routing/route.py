"""A built route: its definition plus the compiled predicate, filters and handler chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway.config.schema import RouteDefinition
from gateway.errors import ConfigError
from gateway.exchange import Handler
from gateway.extension import GatewayFilter, Predicate
from gateway.routing.metadata import RoutePolicy

_SCHEMES = {"http", "https", "ws", "wss", "lb", "forward"}


@dataclass(frozen=True, slots=True)
class RouteUri:
    """A route's ``uri``. For ``lb://svc`` and ``lb:ws://svc``, ``service`` is set and host/port
    come from the chosen instance; for ``forward:/path`` only ``path`` matters."""

    raw: str
    scheme: str  # http, https, ws, wss, lb, forward
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
