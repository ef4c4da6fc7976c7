"""The upstream side of the data plane: one ``asyncio.Protocol`` per pooled keep-alive connection,
responses parsed by httptools. A request is sent with ``send``; the returned future resolves at
the response head, and the body then streams through a ``StreamBody`` with back-pressure.

This is the only place that sees upstream sockets, so every socket/parser failure is mapped here
to the gateway's own errors (``raise ... from exc``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, cast

import httptools

from gateway.engine.body import StreamBody
from gateway.engine.framing import LAST_CHUNK, chunk, end_to_end, strip_hop_by_hop
from gateway.engine.upgrade import Tunnel
from gateway.errors import GatewayError, UpstreamProtocolError, UpstreamTimeout
from gateway.exchange import BodySource, Response
from gateway.headers import Headers

log = logging.getLogger("meshgate.upstream")

# Where a connection goes: host, port, TLS and the TLS server name when it is not the host (the
# pool keeps idle connections per origin: one opened with another SNI is another upstream).
Origin = tuple[str, int, bool, str | None]

# A 101's head is passed on with the switch itself: these hop-by-hop fields are the answer.
_SWITCH_FIELDS = frozenset({b"upgrade", b"connection"})
# The gateway's own id goes back to the client, not the upstream's.
_REWRITTEN = frozenset({b"x-request-id"})


class ConnectionLostBeforeResponse(UpstreamProtocolError):
    """The connection died before any byte of the response arrived. On a reused connection with
    nothing sent from the request body this is safe to retry once on a fresh connection (the
    upstream most likely closed an idle keep-alive connection as we picked it)."""


class ConnectionOwner(Protocol):
    """Whoever keeps upstream connections between requests (the pool). A connection tells it
    when it starts and stops waiting on a response (so the owner can sweep response
    deadlines), when it is reusable again, and when it closed."""

    def busy(self, conn: UpstreamProtocol) -> None:
        """A request is in flight: call ``conn.check_deadline`` until ``idle``."""
        ...

    def idle(self, conn: UpstreamProtocol) -> None:
        """No response deadline to check any more."""
        ...

    def release(self, conn: UpstreamProtocol) -> None:
        """A complete response after a fully sent request: ``conn`` may carry another."""
        ...

    def forget(self, conn: UpstreamProtocol) -> None:
        """``conn`` closed: drop every reference to it."""
        ...


class UpstreamProtocol(asyncio.Protocol):
    """One upstream connection, one request at a time.

    What its owner may use: ``key`` (its origin), ``loop``, ``usable``, ``idle_since`` (set
    by the owner when it parks the connection), ``check_deadline``, ``close`` and ``abort``;
    the forwarder uses ``send``. The rest is the parser's and the writer's business.
    """

    def __init__(self, owner: ConnectionOwner, key: Origin) -> None:
        self.key = key
        self._owner = owner
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        # None once the connection is gone (see connection_lost).
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._future: asyncio.Future[Response] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: StreamBody | None = None
        self._request_body: BodySource | None = None
        self._head_request = False
        self._upgrade = False
        self._interim = False
        self._close_delimited = False
        self._keep_alive = True
        self._request_done = True
        self._response_done = True
        self._got_bytes = False
        self._timeout = 0.0
        self._last_read = 0.0
        # Response deadline, checked by the owner's sweep (0: none); see ConnectionOwner.busy.
        self._deadline = 0.0
        self._tunnel: Tunnel | None = None
        self._switching: Response | None = None
        self._reading_paused = False
        self.closed = False
        self.requests = 0  # sent on this connection
        self.idle_since = 0.0  # set by the owner when it parks the connection (loop time)

    # -- lifecycle ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=256 * 1024, low=64 * 1024)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # The parser's callbacks are bound to this protocol: dropped, the connection (with a
        # TLS transport's buffers) is freed by reference counting, not at a full collection.
        self._parser = None
        self._clear_deadline()
        self._owner.forget(self)
        if self._tunnel is not None:
            self._tunnel.upstream_lost()
            return
        future = self._future
        if future is not None and not future.done():
            if self._got_bytes:
                future.set_exception(
                    UpstreamProtocolError("upstream closed the connection mid-response")
                )
            else:
                future.set_exception(
                    ConnectionLostBeforeResponse("upstream closed the connection before responding")
                )
        elif self._body is not None and not self._response_done:
            if self._close_delimited:
                self._response_done = True
                self._body.feed_end()
            else:
                self._body.feed_error(UpstreamProtocolError("upstream closed mid-body"))
        self._future = None

    def eof_received(self) -> bool | None:
        if self._tunnel is not None:
            return self._tunnel.upstream_eof()
        return None

    def pause_writing(self) -> None:
        if self._tunnel is not None:
            self._tunnel.upstream_write_paused()
        elif self._request_body is not None:
            self._request_body.pause()

    def resume_writing(self) -> None:
        if self._tunnel is not None:
            self._tunnel.upstream_write_resumed()
        elif self._request_body is not None:
            self._request_body.resume()

    @property
    def usable(self) -> bool:
        """Open, and not closing: may carry a request."""
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- sending -----------------------------------------------------------------------------------
    def send(
        self,
        head: bytes,
        body: BodySource | None,
        *,
        chunked: bool,
        head_request: bool,
        upgrade: bool,
        response_timeout: float,
    ) -> asyncio.Future[Response]:
        transport = self.transport
        assert transport is not None
        if self._reading_paused:
            # Paused by the previous response's back-pressure after its last byte was read:
            # the client's writer drained with no body left to resume.
            self._resume_reading()
        self.requests += 1
        self._future = future = self.loop.create_future()
        self._headers = []
        self._body = None
        self._head_request = head_request
        self._upgrade = upgrade
        self._interim = False
        self._close_delimited = False
        self._keep_alive = True
        self._got_bytes = False
        self._response_done = False
        self._request_done = body is None
        self._request_body = body
        self._timeout = response_timeout
        self._last_read = now = self.loop.time()
        self._deadline = now + response_timeout
        self._owner.busy(self)
        transport.write(head)
        if body is not None:
            body.start(_RequestWriter(self, chunked))
        return future

    def request_progress(self) -> None:
        """A chunk of the request body went out. The response timeout counts silence, so a
        slow upload the upstream is still reading doesn't become a 504 (nginx's
        proxy_send_timeout / proxy_read_timeout split, in one setting)."""
        if self._future is not None and self._deadline:
            self._deadline = self.loop.time() + self._timeout

    def request_sent(self) -> None:
        """The request body went out to its end (told by the request writer)."""
        self.request_progress()  # the wait for the head starts when the request is complete
        self._request_done = True
        self._request_body = None
        self._maybe_release()

    def request_failed(self, exc: BaseException) -> None:
        """The client's body broke off (told by the request writer): this upstream request can
        never be completed."""
        self._request_body = None
        future = self._future
        if future is not None and not future.done():
            if isinstance(exc, GatewayError):  # e.g. a malformed chunk: the client's fault
                future.set_exception(exc)
            else:
                future.set_exception(UpstreamProtocolError(f"request body aborted: {exc}"))
        self.abort()

    # -- reading -----------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.from_upstream(data)
            return
        if self._future is None and self._response_done:
            # Bytes on an idle connection: the peer is confused; this connection is done.
            self.abort()
            return
        self._got_bytes = True
        self._last_read = self.loop.time()
        parser = self._parser
        if parser is None:
            return  # closed
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            self._start_tunnel(data[offset:])
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid response from upstream: {exc}"))

    def on_message_begin(self) -> None:
        self._headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None  # it is calling us
        status = parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 100 Continue / 103 Early Hints: wait for the final answer
            return
        self._keep_alive = bool(parser.should_keep_alive())
        raw = self._headers
        if status == 101:
            if not self._upgrade:
                self._fail(UpstreamProtocolError("upstream switched protocols unasked"))
                return
            # The body of a 101 is the spliced connection, handed over when llhttp stops at the
            # upgrade; until then nothing on this connection counts as a response body.
            self._response_done = True
            self._switching = Response(status, Headers(strip_hop_by_hop(raw, _SWITCH_FIELDS)))
            return
        if self._upgrade:
            self._keep_alive = False  # refused upgrade: don't reuse a connection we asked to switch
        headers, length, chunked = end_to_end(raw, drop=_REWRITTEN)
        no_body = self._head_request or status in (204, 304)
        body: bytes | StreamBody
        if no_body:
            body = b""
            self._response_done = True
            if self._head_request:
                # llhttp would wait for Content-Length bytes after a HEAD: start a fresh parser.
                self._parser = httptools.HttpResponseParser(self)
        else:
            if length is None and not chunked:
                self._close_delimited = True
                self._keep_alive = False
            body = self._body = StreamBody(
                None if chunked else length,
                pause_reading=self._pause_reading,
                resume_reading=self._resume_reading,
                abort=self.abort,
            )
        self._resolve(Response(status, Headers(headers), body))
        if no_body:
            self._maybe_release()

    def on_body(self, data: bytes) -> None:
        if self._body is not None:
            self._body.feed(data)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._response_done:
            return  # HEAD / 204 / 304: already complete at the head
        self._response_done = True
        self._clear_deadline()
        body = self._body
        if body is not None:
            # Let go of it: a pooled connection must not keep the last response's reader (and
            # through it a client connection) alive until its next request.
            self._body = None
            body.feed_end()
        self._maybe_release()

    # -- internals ---------------------------------------------------------------------------------
    def _resolve(self, response: Response) -> None:
        future = self._future
        if future is not None and not future.done():
            future.set_result(response)
        self._future = None
        if self._response_done:
            self._clear_deadline()

    def _fail(self, exc: Exception) -> None:
        future = self._future
        self._future = None
        if future is not None and not future.done():
            future.set_exception(exc)
        elif self._body is not None:
            self._body.feed_error(exc)
        self.abort()

    def _start_tunnel(self, rest: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self._clear_deadline()
        response = self._switching
        self._switching = None
        if response is None:
            self._fail(UpstreamProtocolError("upstream switched protocols without a 101"))
            return
        transport.pause_reading()  # until the client side is attached
        self._tunnel = Tunnel(transport, rest)
        response.body = self._tunnel
        self._resolve(response)

    def _maybe_release(self) -> None:
        if self._response_done and self._request_done:
            self._clear_deadline()
            if self._keep_alive and self._tunnel is None:
                self._owner.release(self)
            else:
                self.close()
        elif self._response_done and not self._request_done:
            # The upstream answered before reading the whole request: it can't be reused.
            self._keep_alive = False

    def _pause_reading(self) -> None:
        if self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def check_deadline(self, now: float) -> None:
        """Response timeout: time to the response head, then the longest silence in the body."""
        if not self._deadline or now < self._deadline:
            return
        if self._response_done or self.closed:
            self._clear_deadline()
            return
        if self._future is None and now - self._last_read < self._timeout:
            self._deadline = self._last_read + self._timeout  # the body is still flowing
            return
        self._clear_deadline()
        self._fail(UpstreamTimeout(f"upstream did not respond within {self._timeout:g}s"))

    def _clear_deadline(self) -> None:
        if self._deadline:
            self._deadline = 0.0
            self._owner.idle(self)


class _RequestWriter:
    """Streams the client's request body to the upstream, re-chunking when it was chunked."""

    __slots__ = ("_chunked", "_conn")

    def __init__(self, conn: UpstreamProtocol, chunked: bool) -> None:
        self._conn = conn
        self._chunked = chunked

    def on_data(self, data: bytes) -> None:
        conn = self._conn
        transport = conn.transport
        if not data or transport is None or transport.is_closing():
            return
        transport.write(chunk(data) if self._chunked else data)
        conn.request_progress()

    def on_end(self) -> None:
        transport = self._conn.transport
        if self._chunked and transport is not None and not transport.is_closing():
            transport.write(LAST_CHUNK)
        self._conn.request_sent()

    def on_error(self, exc: BaseException) -> None:
        self._conn.request_failed(exc)
