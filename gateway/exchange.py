"""The request/response pair that every layer, predicate and filter sees.

Transport-independent: nothing here touches a socket. The engine builds an ``Exchange`` from a
parsed request head and hands it to the route's handler; bodies are ``BodySource`` streams the
engine pumps chunk by chunk with flow control, so filters never hold a whole body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gateway.headers import Headers

if TYPE_CHECKING:
    from gateway.routing.route import Route


class BodySink(Protocol):
    """Receives a streamed body. Called from the event loop thread, never concurrently."""

    def on_data(self, chunk: bytes) -> None: ...

    def on_end(self) -> None: ...

    def on_error(self, exc: BaseException) -> None: ...


class BodySource(Protocol):
    """A body delivered by callbacks: ``start`` hands over a sink that gets everything buffered so
    far and then each chunk as it arrives. ``pause``/``resume`` are the back-pressure lever the
    sink pulls when its own writer is full."""

    @property
    def length(self) -> int | None:
        """Bytes the body will have, or None when it is chunked / delimited by close."""
        ...

    def start(self, sink: BodySink) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def abort(self) -> None: ...


@dataclass(slots=True)
class Request:
    """The request head as filters see and change it. ``path`` is the normalised, still
    percent-encoded path; ``query`` is the raw query string without ``?``."""

    method: str
    path: str
    query: str
    headers: Headers
    version: str = "1.1"

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(slots=True)
class Response:
    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes | BodySource = b""
    reason: str | None = None


Handler = Callable[["Exchange"], Awaitable[Response]]


@dataclass(slots=True)
class Upgrade:
    """Set by the engine on a request that asks to switch protocols (WebSocket). The forwarder
    hands the raw client transport to the splicer after the upstream answers 101."""

    protocol: str


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt goes. ``instance_id`` is set when a balancer picked it."""

    host: str
    port: int
    secure: bool = False
    instance_id: str | None = None
    service: str | None = None

    @property
    def authority(self) -> str:
        default = 443 if self.secure else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(slots=True, eq=False)
class Exchange:
    request: Request
    client_host: str
    client_port: int
    server_host: str
    server_port: int
    scheme: str = "http"
    request_id: str = ""
    body: BodySource | None = None
    upgrade: Upgrade | None = None
    route: Route | None = None
    # The path the client sent (after dot-segment removal), kept for X-Forwarded-Prefix.
    original_path: str = ""
    original_host: str | None = None
    # Template variables captured by Path/Host predicates (SCG's URI_TEMPLATE_VARIABLES).
    uri_variables: dict[str, str] = field(default_factory=dict)
    # Free-form per-request state for filters (SCG's exchange attributes).
    attributes: dict[str, Any] = field(default_factory=dict)
    # Where the forwarder sends the request: set from the route URI or by the balancer.
    target: Target | None = None
    preserve_host: bool = False
    # Monotonic time at which the whole request must be done (None: no overall deadline).
    deadline: float | None = None
    # Number of times the request was forwarded internally (forward: URIs); bounds loops.
    forwards: int = 0
    # Set by observability: the trace context (a ``TraceContext``) when tracing is on.
    trace: Any = None
    # Monotonic and wall-clock times the request head was complete (observability).
    started: float = 0.0
    started_wall: float = 0.0
