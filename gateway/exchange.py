"""The request/response pair that every layer, predicate and filter sees.

Transport-independent: nothing here touches a socket. The engine builds an ``Exchange`` from a
parsed request head and hands it to the route's handler; bodies are ``BodySource`` streams the
engine pumps chunk by chunk with flow control, so filters never hold a whole body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.headers import Headers


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

    def when_done(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once, when the body has ended, failed or been aborted (whatever
        holds a slot for the whole response — a bulkhead, an in-flight count — lets go then).
        A body that is already over runs it at once."""
        ...


class ReplayableSource(BodySource, Protocol):
    """A request body kept so that another attempt (a retry, a fallback) can send it again."""

    @property
    def replayable(self) -> bool:
        """Another attempt can carry this body: nothing was sent yet, or all of it is kept."""
        ...

    def replay(self) -> BodySource:
        """The body for the next attempt (itself when nothing of it was sent yet)."""
        ...


ReplayFactory = Callable[[BodySource, int], ReplayableSource]
"""Wraps a client's body so that up to ``limit`` bytes of it can be sent again."""


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
    # Written as final, as SCG's setComplete() or a forward's inner route leaves it: the
    # response filters of the route it passes back through (AddResponseHeader...) leave it be.
    committed: bool = False

    def discard(self) -> None:
        """Nobody will read this response (a retry, a hedge or a fallback replaces it): a
        streamed body is aborted, so its connection is closed rather than reused."""
        if not isinstance(self.body, bytes):
            self.body.abort()


Handler = Callable[["Exchange"], Awaitable[Response]]


@dataclass(slots=True)
class Upgrade:
    """Set by the engine on a request that asks to switch protocols (WebSocket). The forwarder
    hands the raw client transport to the splicer after the upstream answers 101."""

    protocol: str


class Destination(Protocol):
    """Where one attempt goes: a route's fixed address (``Target``) or a discovered instance
    (``discovery.ServiceInstance`` meets this shape as it is)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def secure(self) -> bool: ...

    @property
    def tls_server_name(self) -> str | None:
        """The name a TLS connection sends as SNI and checks the certificate against, when it
        is not ``host`` (an instance registered by IP with a configured server name)."""
        ...

    @property
    def instance_id(self) -> str | None:
        """Set when a balancer picked it."""
        ...

    @property
    def service(self) -> str | None: ...

    @property
    def lane(self) -> str | None:
        """The gray-release lane of a discovered instance (``"stable"`` when it names none);
        None for a fixed address."""
        ...

    @property
    def authority(self) -> str:
        """``host[:port]`` as the Host header writes it (the port only when not the default)."""
        ...


class MatchedRoute(Protocol):
    """What request-time code reads of the route that matched (the built ``Route``)."""

    @property
    def id(self) -> str: ...

    @property
    def pattern(self) -> str | None:
        """The route's first Path pattern, for ``http.route`` (low cardinality)."""
        ...


@dataclass(frozen=True, slots=True)
class Target:
    """A fixed address from a route's ``http(s)://`` or ``ws(s)://`` URI."""

    host: str
    port: int
    secure: bool = False
    instance_id: str | None = None
    service: str | None = None
    lane: str | None = None
    tls_server_name: str | None = None  # a URI's host is its own server name

    @property
    def authority(self) -> str:
        default = 443 if self.secure else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The client certificate the TLS handshake verified (mTLS), described once per
    connection: what the upstream gets as ``X-Forwarded-Client-Cert``."""

    sha256: str  # hex digest of the certificate (DER)
    subject: str  # the subject DN, RFC 4514 (most specific first: ``CN=a,O=b``)
    uri: str | None  # the first URI SAN (a SPIFFE ID in a mesh), if any
    xfcc: bytes  # the Envoy XFCC element ``Hash=...;Subject="...";URI=...``


# The attribute the path filters record each path they replaced in, oldest first (SCG's
# GATEWAY_ORIGINAL_REQUEST_URL_ATTR): X-Forwarded-Prefix is derived from it.
ORIGINAL_PATHS = "original_paths"


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
    route: MatchedRoute | None = None
    # The path the client sent (after dot-segment removal), kept for X-Forwarded-Prefix.
    original_path: str = ""
    original_host: str | None = None
    # Template variables captured by Path/Host predicates (SCG's URI_TEMPLATE_VARIABLES).
    uri_variables: dict[str, str] = field(default_factory=dict)
    # Free-form per-request state for filters (SCG's exchange attributes).
    attributes: dict[str, Any] = field(default_factory=dict)
    # Where the forwarder sends the request: set from the route URI or by the balancer.
    target: Destination | None = None
    preserve_host: bool = False
    # Number of times the request was forwarded internally (forward: URIs); bounds loops.
    forwards: int = 0
    # The call state of Retry and hedging: instances already tried (the picker avoids them
    # and adds each pick; None when nothing retries), the attempt number (0 outside Retry),
    # and the client's body kept for another attempt.
    tried: set[str] | None = None
    attempt: int = 0
    replay: ReplayableSource | None = None
    # Why the CircuitBreaker filter gave up on the route (SCG's
    # CIRCUITBREAKER_EXECUTION_EXCEPTION_ATTR): what FallbackHeaders on the fallback reads.
    failure: BaseException | None = None
    # The Weight predicate's choice per group, made once per request.
    weight_choices: dict[str, str | None] | None = None
    # Set by observability: the trace context (a ``TraceContext``) when tracing is on.
    trace: Any = None
    # Monotonic and wall-clock times the request head was complete (observability).
    started: float = 0.0
    started_wall: float = 0.0
    # The gray-release lane the route's filters (Lane, LaneSplit) or a trusted inbound
    # ``baggage`` asked for (None: none asked, which is stable), and whether the pick fell
    # back to stable because that lane had no instance.
    lane: str | None = None
    lane_fallback: bool = False
    # The authenticated identity an auth filter established (JwtAuth: ``sub``; ApiKey: the
    # key's name; BasicAuth: the user); None: not authenticated. RequestRateLimiter's
    # ``principal`` key and the access log read it.
    principal: str | None = None
    # The head the forwarder last sent upstream for this request: a mirrored copy is that
    # head re-addressed, not built again.
    upstream_head: bytes | None = None
    # The verified client certificate of the connection (mTLS); None without one.
    client_cert: ClientCertificate | None = None
    # The client a trusted proxy named in X-Forwarded-For, resolved once per request before
    # routing (security/client_address.py); None: the socket peer is the client.
    resolved_client: str | None = None

    @property
    def client_address(self) -> str:
        """The one client address RemoteAddr, IpFilter, rate-limit keys and the access log
        read: the socket peer, or the client behind it when the peer is a trusted proxy."""
        resolved = self.resolved_client
        return self.client_host if resolved is None else resolved
