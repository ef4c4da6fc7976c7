"""What every client connection of one listener shares: the handler, the limits, the live
connections (so shutdown can drain them) and the one periodic sweep that checks their deadlines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from gateway.errors import GatewayError
from gateway.exchange import ClientCertificate, Exchange, Handler, Response


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_head_bytes: int = 16 * 1024  # request line + fields (431); Netty, under SCG, allows 8 KiB
    max_headers: int = 100  # field lines (431)
    max_url_bytes: int = 8 * 1024  # the request target alone (414)
    header_timeout: float = 10.0  # from a head's first byte to its end (408, close)
    keepalive_timeout: float = 75.0  # idle between requests (close)
    # ``%2F``/``%5C`` and encoded dot-segments in a path pass instead of a 400.
    allow_encoded_slash: bool = False


# Maps a failure to the response the client gets (``None``: no exchange was parsed yet).
ErrorResponder = Callable[[Exchange | None, GatewayError], Response]

# The verified client certificate of a new connection's transport (mTLS), or None: asked once
# per connection, right after the TLS handshake.
ClientIdentity = Callable[[asyncio.BaseTransport], ClientCertificate | None]


class ExchangeListener(Protocol):
    """Told by the engine when a request head is complete and when its response is done (or
    abandoned). Metrics, the access log and the server span hang off these two calls, so the
    engine knows nothing about any of them."""

    def started(self, exchange: Exchange) -> None:
        """The head is parsed and the exchange is about to be handled."""
        ...

    def finished(self, exchange: Exchange, status: int, bytes_in: int, bytes_out: int) -> None:
        """The response is out, or will never be: ``status`` is what the client got (499 when
        it went away first); bytes are body bytes read from and written to the client."""
        ...


class ClientConnection(Protocol):
    """What the listener asks of each client connection it tracks."""

    def check_deadline(self, now: float) -> None:
        """Act on the connection's pending timeout (header, idle, linger) if it is due."""
        ...

    def close_when_idle(self) -> None:
        """Stop keep-alive: close now if idle, else after the response in flight."""
        ...

    def abort(self) -> None:
        """Close at once, dropping whatever is unsent."""
        ...

    @property
    def active_exchange(self) -> Exchange | None:
        """The request being answered now, if any (the live numbers' in-flight counts)."""
        ...


class ServerState:
    """Shared by every connection of one listener: the handler, limits, live connections (for
    draining) and a request-id generator."""

    def __init__(
        self,
        handler: Handler,
        error_response: ErrorResponder,
        limits: ServerLimits,
        request_id: Callable[[], str],
        scheme: str = "http",
        observer: ExchangeListener | None = None,
        identify_client: ClientIdentity | None = None,
    ) -> None:
        """``scheme``: ``https`` on a TLS listener; ``identify_client``: set when the listener
        asks clients for a certificate."""
        self.handler = handler
        self.identify_client = identify_client
        self.observer = observer
        self.error_response = error_response
        self.limits = limits
        self.request_id = request_id
        self.scheme = scheme
        self.connections: set[ClientConnection] = set()
        self.draining = False
        self._all_closed: asyncio.Event | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        # Deadlines are checked by one periodic sweep instead of a timer per request: arming a
        # timer is a timestamp store on the hot path, and 10,000 idle connections cost one
        # pass per tick rather than 10,000 timer handles.
        self.sweep_interval = max(
            0.05, min(1.0, limits.header_timeout / 4, limits.keepalive_timeout / 4)
        )

    def watch(self, conn: ClientConnection, loop: asyncio.AbstractEventLoop) -> None:
        self.connections.add(conn)
        if self._sweeper is None and not self._closed:
            self._sweeper = loop.call_later(self.sweep_interval, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for conn in list(self.connections):
            conn.check_deadline(now)
        self._sweeper = None
        if self.connections and not self._closed:
            self._sweeper = loop.call_later(self.sweep_interval, self._sweep, loop)

    def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def exchanges(self) -> Iterator[Exchange]:
        """The requests being answered now, one per busy connection (pipelined requests
        behind one wait: they are not in flight yet)."""
        for conn in list(self.connections):
            exchange = conn.active_exchange
            if exchange is not None:
                yield exchange

    def forget(self, conn: ClientConnection) -> None:
        self.connections.discard(conn)
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()

    def drain(self) -> None:
        """Stop keep-alive: idle connections close now, busy ones after their response."""
        self.draining = True
        for conn in list(self.connections):
            conn.close_when_idle()

    async def wait_closed(self, timeout: float) -> bool:
        """Wait for every connection to close; abort the stragglers after ``timeout``."""
        if self.connections:
            self._all_closed = asyncio.Event()
            try:
                async with asyncio.timeout(timeout):
                    await self._all_closed.wait()
            except TimeoutError:
                pass
        remaining = list(self.connections)
        for conn in remaining:
            conn.abort()
        return not remaining
