"""Keep-alive connection pool for upstreams, one per event loop (per worker process).

Idle connections are kept LIFO per origin (host, port, TLS, TLS server name) — the most
recently used one is the least likely to have been closed by the upstream's own idle timeout —
and a periodic sweep closes those unused for ``idle_timeout``. A connection is returned only
after a complete response *and* a fully sent request; anything else is closed.

Busy connections' response timeouts are checked by a second, faster sweep (every
``RESPONSE_SWEEP`` seconds while any request is in flight) rather than a timer per request:
arming one is a timestamp store, where a loop timer costs an allocation, a heap insert and a
cancel on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from dataclasses import dataclass

from gateway.engine.upstream import Origin, UpstreamProtocol
from gateway.errors import UpstreamCertificateError, UpstreamConnectError, UpstreamTimeout

# How late a response timeout may fire, at most.
RESPONSE_SWEEP = 0.025


@dataclass(frozen=True, slots=True)
class PoolSettings:
    connect_timeout: float = 5.0
    idle_timeout: float = 30.0
    # Above the usual concurrency per upstream: a cap below it closes and reopens connections
    # on every burst.
    max_idle_per_host: int = 1024


class ConnectionPool:
    """The ``ConnectionOwner`` of every upstream connection on one loop."""

    def __init__(self, settings: PoolSettings, ssl_context: ssl.SSLContext | None = None) -> None:
        """``ssl_context``: the client context of every TLS connection (the gateway passes the
        one ``gateway.security.tls_client`` builds from its settings); a pool without one opens
        plain connections only."""
        self._settings = settings
        self._ssl = ssl_context
        self._idle: dict[Origin, deque[UpstreamProtocol]] = {}
        self._closed = False
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_interval = max(0.05, min(1.0, settings.idle_timeout / 4))
        self._busy: set[UpstreamProtocol] = set()
        self._busy_sweeper: asyncio.TimerHandle | None = None

    @property
    def settings(self) -> PoolSettings:
        return self._settings

    def idle_count(self, key: Origin | None = None) -> int:
        if key is not None:
            return len(self._idle.get(key, ()))
        return sum(len(q) for q in self._idle.values())

    def take(
        self, host: str, port: int, secure: bool, server_name: str | None = None
    ) -> UpstreamProtocol | None:
        """An idle connection to reuse, if there is one (no coroutine on the common path)."""
        idle = self._idle.get((host, port, secure, server_name))
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn
        return None

    async def connect(
        self,
        host: str,
        port: int,
        secure: bool,
        connect_timeout: float | None = None,
        server_name: str | None = None,
    ) -> UpstreamProtocol:
        """A new connection (``take`` found none to reuse). A TLS one sends ``server_name``
        (else ``host``) as SNI and checks the certificate against it; a ``host`` that is an IP
        address with no ``server_name`` is checked against the certificate's IP SANs (and no
        SNI is sent, as RFC 6066 wants). The TLS handshake is inside the connect timeout."""
        key = (host, port, secure, server_name)
        timeout = connect_timeout or self._settings.connect_timeout
        loop = asyncio.get_running_loop()
        ssl_context: ssl.SSLContext | None = None
        if secure:
            ssl_context = self._ssl
            if ssl_context is None:
                raise UpstreamConnectError(
                    f"cannot connect to {host}:{port}: the pool has no TLS client context"
                )
        name = server_name or host
        try:
            async with asyncio.timeout(timeout):
                _, protocol = await loop.create_connection(
                    lambda: UpstreamProtocol(self, key),
                    host,
                    port,
                    ssl=ssl_context,
                    server_hostname=name if secure else None,
                )
        except TimeoutError as exc:
            raise UpstreamTimeout(f"connect to {host}:{port} timed out after {timeout:g}s") from exc
        except ssl.SSLCertVerificationError as exc:
            # Untrusted, expired, or not for ``name``: the log gets OpenSSL's reason, the
            # client a 502 that says only that the certificate was not accepted.
            raise UpstreamCertificateError(
                f"cannot connect to {host}:{port}: its TLS certificate for {name!r} could not "
                f"be verified: {exc.verify_message or exc.reason}"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        return protocol

    def release(self, conn: UpstreamProtocol) -> None:
        if self._closed or not conn.usable:
            conn.close()
            return
        idle = self._idle.setdefault(conn.key, deque())
        if len(idle) >= self._settings.max_idle_per_host:
            conn.close()
            return
        loop = conn.loop
        conn.idle_since = loop.time()
        idle.append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._sweep_interval, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close connections idle longer than ``idle_timeout``. One periodic pass instead of a
        timer per release: the hot path only stores a timestamp."""
        self._sweeper = None
        expired_before = loop.time() - self._settings.idle_timeout
        for key, idle in list(self._idle.items()):
            # LIFO: the longest-idle connections are at the left end.
            while idle and idle[0].idle_since <= expired_before:
                idle.popleft().close()
            if not idle:
                del self._idle[key]
        if self._idle and not self._closed:
            self._sweeper = loop.call_later(self._sweep_interval, self._sweep, loop)

    def busy(self, conn: UpstreamProtocol) -> None:
        """``conn`` has a request in flight: check its response deadline from now on."""
        self._busy.add(conn)
        if self._busy_sweeper is None and not self._closed:
            self._busy_sweeper = conn.loop.call_later(RESPONSE_SWEEP, self._sweep_busy, conn.loop)

    def idle(self, conn: UpstreamProtocol) -> None:
        self._busy.discard(conn)

    def _sweep_busy(self, loop: asyncio.AbstractEventLoop) -> None:
        self._busy_sweeper = None
        now = loop.time()
        for conn in list(self._busy):
            conn.check_deadline(now)
        if self._busy and not self._closed:
            self._busy_sweeper = loop.call_later(RESPONSE_SWEEP, self._sweep_busy, loop)

    def forget(self, conn: UpstreamProtocol) -> None:
        """Drop a connection from the idle and busy sets (it closed)."""
        self._busy.discard(conn)
        idle = self._idle.get(conn.key)
        if idle:
            with contextlib.suppress(ValueError):
                idle.remove(conn)

    def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._busy_sweeper is not None:
            self._busy_sweeper.cancel()
            self._busy_sweeper = None
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
