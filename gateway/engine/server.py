"""The client-facing side of the data plane: one ``asyncio.Protocol`` per connection, parsed by
httptools (llhttp, strict mode), requests handled one at a time per connection (pipelined requests
queue behind the active one and reading pauses), responses written with one write per head.

Every failure here is a connection-level decision (400/408/431 and close, or just close); all
request-level failures are mapped to responses by the handler's error layer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import httptools

from gateway.engine.body import StreamBody
from gateway.engine.framing import (
    HOP_BY_HOP,
    LAST_CHUNK,
    chunk,
    normalize_path,
    request_framing,
    serialize_headers,
    status_line,
)
from gateway.engine.upgrade import Tunnel
from gateway.errors import BadRequest, GatewayError, HeadersTooLarge, UpstreamProtocolError
from gateway.exchange import Exchange, Handler, Request, Response, Upgrade
from gateway.headers import Headers

log = logging.getLogger("meshgate.engine")

_NO_BODY_STATUS = frozenset({204, 304})
# The most request body we read and drop after answering, to keep a connection alive.
MAX_LINGER_BYTES = 4 * 1024 * 1024
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# A client-supplied X-Request-Id is kept only when it is a plain token of sane length.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_head_bytes: int = 32 * 1024
    max_headers: int = 100
    max_url_bytes: int = 8 * 1024
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0


ErrorResponder = Callable[[Exchange | None, GatewayError], Response]


class RequestObserver(Protocol):
    """Told when a request head is complete and when its response is done (or abandoned)."""

    def started(self, exchange: Exchange) -> None: ...

    def finished(self, exchange: Exchange, status: int, bytes_in: int, bytes_out: int) -> None: ...


# nginx's status for "the client closed the connection before the response was complete".
CLIENT_CLOSED = 499


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
        observer: RequestObserver | None = None,
    ) -> None:
        self.handler = handler
        self.observer = observer
        self.error_response = error_response
        self.limits = limits
        self.request_id = request_id
        self.scheme = scheme
        self.connections: set[HttpServerProtocol] = set()
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

    def watch(self, conn: HttpServerProtocol, loop: asyncio.AbstractEventLoop) -> None:
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

    def forget(self, conn: HttpServerProtocol) -> None:
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


class _Cycle:
    """One request on a connection, from parsed head to the last byte of its response."""

    __slots__ = (
        "body",
        "bytes_out",
        "chunked_out",
        "exchange",
        "expect_continue",
        "keep_alive",
        "method",
        "observed",
        "status",
        "task",
        "upgrade_buffer",
        "version",
    )

    def __init__(self, exchange: Exchange, method: bytes, version: bytes, keep_alive: bool) -> None:
        self.exchange = exchange
        self.method = method
        self.version = version
        self.keep_alive = keep_alive
        self.body: StreamBody | None = None
        self.chunked_out = False
        self.expect_continue = False
        self.task: asyncio.Task[None] | None = None
        self.upgrade_buffer = b""
        self.status = 0
        self.bytes_out = 0
        self.observed = False


class HttpServerProtocol(asyncio.Protocol):
    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._client = ("", 0)
        self._server = ("", 0)
        # head being parsed
        self._url: list[bytes] = []
        self._url_len = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._in_head = False
        self._parse_error: GatewayError | None = None
        self._client_request_id: bytes | None = None
        self._host: bytes | None = None
        self._parsing: _Cycle | None = None
        # request being answered, and the ones pipelined behind it
        self._active: _Cycle | None = None
        self._pipeline: deque[_Cycle] = deque()
        self._streaming: StreamBody | None = None  # response body being written
        self._pause_reasons: set[str] = set()
        # Monotonic time after which ``_on_deadline`` fires (0: none); see ServerState._sweep.
        self._deadline = 0.0
        self._on_deadline: Callable[[], None] = self._on_idle_timeout
        self._tunnel: Tunnel | None = None
        self._closing = False
        self._close_when_idle = False

    # -- connection lifecycle ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=256 * 1024, low=64 * 1024)
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self._client = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self._server = (str(sock[0]), int(sock[1])) if sock else ("", 0)
        self._state.watch(self, self._loop)
        if self._state.draining:
            self._closing = True
            transport.close()
            return
        self._arm(self._state.limits.header_timeout, self._on_header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._state.forget(self)
        self._clear_deadline()
        if self._tunnel is not None:
            self._tunnel.client_lost()
            return
        gone = ConnectionResetError("client closed the connection")
        for cycle in (self._active, *self._pipeline):
            if cycle is None:
                continue
            self._observe(cycle, cycle.status or CLIENT_CLOSED)
            if cycle.body is not None:
                cycle.body.feed_error(gone)
            if cycle.task is not None and not cycle.task.done():
                cycle.task.cancel()
        if self._streaming is not None:
            self._streaming.abort()
            self._streaming = None
        self._pipeline.clear()

    def eof_received(self) -> bool | None:
        if self._tunnel is not None:
            return self._tunnel.client_eof()
        # Half-close from the client: finish what is in flight, then close. A request whose
        # head or body was cut off by the FIN can never complete, so it fails now.
        self._close_when_idle = True
        parsing = self._parsing
        if parsing is not None and parsing.body is not None and not parsing.body.complete:
            parsing.body.feed_error(ConnectionResetError("client closed mid-body"))
            self._drop_pipeline(CLIENT_CLOSED)
        if self._active is None:
            self._close()
        return True

    def pause_writing(self) -> None:
        if self._tunnel is not None:
            self._tunnel.client_write_paused()
        elif self._streaming is not None:
            self._streaming.pause()

    def resume_writing(self) -> None:
        if self._tunnel is not None:
            self._tunnel.client_write_resumed()
        elif self._streaming is not None:
            self._streaming.resume()

    def close_when_idle(self) -> None:
        self._close_when_idle = True
        if self._active is None and not self._in_head:
            self._close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- reading -----------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.from_client(data)
            return
        if self._closing:
            return
        if not self._in_head and self._parsing is None and self._active is None:
            # first byte of a new request on an idle connection: header timer replaces idle timer
            self._arm(self._state.limits.header_timeout, self._on_header_timeout)
        if self._in_head or self._parsing is None:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            self._on_upgrade(data[offset:])
            return
        except httptools.HttpParserCallbackError as exc:
            error = self._parse_error or BadRequest("malformed request")
            self._reject(error, exc)
            return
        except httptools.HttpParserError as exc:
            self._reject(BadRequest(f"malformed request: {exc}"), exc)
            return
        if self._in_head and self._head_bytes > self._state.limits.max_head_bytes:
            self._reject(HeadersTooLarge("request head exceeds the size limit"), None)

    def _reject(self, error: GatewayError, exc: BaseException | None) -> None:
        """A connection-level protocol error: answer it if nothing else is being answered, and
        close. The parser is in an undefined state, so the connection can't continue."""
        log.debug("rejecting request from %s: %s (%s)", self._client[0], error.message, exc)
        self._in_head = False
        self._pause_reading("error")
        if self._active is None:
            response = self._state.error_response(None, error)
            self._write_local(response, b"1.1", close=True)
            return
        self._close_when_idle = True
        self._drop_pipeline(error.status)
        parsing = self._parsing
        if parsing is not None and parsing.body is not None:
            # A broken body (bad chunk) of the request being forwarded: fail that request with
            # the client's error instead of leaving the upstream waiting for the rest.
            parsing.body.feed_error(error)

    # httptools callbacks ------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_head = True
        self._url = []
        self._url_len = 0
        self._headers = []
        self._parse_error = None
        self._client_request_id = None
        self._host = None

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._url_len += len(url)
        if self._url_len > self._state.limits.max_url_bytes:
            self._parse_error = GatewayError("request target too long", status=414)
            self._parse_error.error = "URI Too Long"
            raise self._parse_error

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        # Two fields the engine needs itself, caught here instead of another pass later.
        size = len(name)
        if size == 4:
            if self._host is None and name.lower() == b"host":
                self._host = value
        elif size == 12 and name.lower() == b"x-request-id":
            self._client_request_id = value
        if len(self._headers) > self._state.limits.max_headers:
            self._parse_error = HeadersTooLarge("too many request header fields")
            raise self._parse_error

    def on_headers_complete(self) -> None:
        received, self._head_bytes = self._head_bytes, 0
        self._in_head = False
        self._clear_deadline()
        limits = self._state.limits
        # The bytes read while this head was arriving bound its size, so the exact sum is only
        # needed when they could exceed the limit (or for a head pipelined in the same read).
        if received == 0 or received > limits.max_head_bytes:
            head_size = self._url_len + sum(len(n) + len(v) + 4 for n, v in self._headers)
            if head_size > limits.max_head_bytes:
                self._parse_error = HeadersTooLarge("request head exceeds the size limit")
                raise self._parse_error
        parser = self._parser
        method = parser.get_method()
        version = parser.get_http_version().encode("latin-1")
        try:
            framing = request_framing(self._headers)
            url = httptools.parse_url(b"".join(self._url))
            raw_path = (url.path or b"/").decode("latin-1")
            if method == b"CONNECT":
                raise BadRequest("CONNECT is not supported")
            if raw_path == "*" and method != b"OPTIONS":
                raise BadRequest("asterisk-form target is only valid with OPTIONS")
            path = raw_path if raw_path == "*" else normalize_path(raw_path)
        except GatewayError as err:
            self._parse_error = err
            raise
        except httptools.HttpParserInvalidURLError as exc:
            self._parse_error = BadRequest("invalid request target")
            raise self._parse_error from exc
        query = url.query.decode("latin-1") if url.query else ""
        headers = Headers(self._headers)
        # The client's X-Request-Id when it is a sane token, else ours.
        client_id = self._client_request_id
        request = Request(method.decode("latin-1"), path, query, headers, version.decode())
        exchange = Exchange(
            request=request,
            client_host=self._client[0],
            client_port=self._client[1],
            server_host=self._server[0],
            server_port=self._server[1],
            scheme=self._state.scheme,
            request_id=client_id.decode("ascii")
            if client_id is not None and _REQUEST_ID.fullmatch(client_id)
            else self._state.request_id(),
            original_path=path,
            original_host=self._host.decode("latin-1") if self._host is not None else None,
        )
        keep_alive = bool(parser.should_keep_alive()) and not self._close_when_idle
        cycle = _Cycle(exchange, method, version, keep_alive)
        observer = self._state.observer
        if observer is not None:
            observer.started(exchange)
        if framing.has_body:
            cycle.expect_continue = (headers.get("expect") or "").lower() == "100-continue"
            cycle.body = StreamBody(
                framing.content_length,
                pause_reading=lambda: self._pause_reading("body"),
                resume_reading=lambda: self._resume_reading("body"),
                abort=self.abort,
                on_start=(lambda: self._send_continue(cycle)) if cycle.expect_continue else None,
            )
            exchange.body = cycle.body
        if parser.should_upgrade():
            exchange.upgrade = Upgrade((headers.get("upgrade") or "").lower())
        self._parsing = cycle
        if self._active is None:
            self._start(cycle)
        else:
            # Pipelined behind an active request: stop reading until we catch up, so a client
            # can't queue unbounded work. (Only here: pausing after every request would cost
            # two epoll_ctl calls per request for the common non-pipelined client.)
            self._pipeline.append(cycle)
            self._pause_reading("pipeline")

    def on_body(self, body: bytes) -> None:
        cycle = self._parsing
        if cycle is not None and cycle.body is not None:
            cycle.body.feed(body)

    def on_message_complete(self) -> None:
        cycle = self._parsing
        self._parsing = None
        if cycle is not None and cycle.body is not None:
            cycle.body.feed_end()
            # The body is all in: back-pressure on it is over, even if the upstream's write
            # buffer never drained (its resume would find no body to resume).
            self._resume_reading("body")

    # -- upgrade -----------------------------------------------------------------------------------
    def _on_upgrade(self, rest: bytes) -> None:
        cycle = self._parsing
        self._parsing = None
        if cycle is None or cycle.exchange.upgrade is None:
            self._reject(BadRequest("unexpected protocol upgrade"), None)
            return
        cycle.upgrade_buffer = rest
        # Nothing more may be parsed as HTTP on this connection until we know the upstream's answer.
        self._pause_reading("upgrade")

    # -- handling ----------------------------------------------------------------------------------
    def _start(self, cycle: _Cycle) -> None:
        self._active = cycle
        cycle.task = self._loop.create_task(self._run(cycle))

    async def _run(self, cycle: _Cycle) -> None:
        exchange = cycle.exchange
        try:
            response = await self._state.handler(exchange)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # last resort: the handler's own error layer should map all
            log.exception(
                "unhandled error for %s %s", exchange.request.method, exchange.request.path
            )
            response = self._state.error_response(exchange, GatewayError(str(exc)))
        if self._closing:
            body = response.body
            if not isinstance(body, bytes):
                body.abort()
            return
        self._send(cycle, response)

    def _send(self, cycle: _Cycle, response: Response) -> None:
        transport = self._transport
        assert transport is not None
        body = response.body
        if cycle.body is not None and not cycle.body.started:
            cycle.body.discard()
        if isinstance(body, Tunnel):
            self._start_tunnel(cycle, response, body)
            return
        if cycle.exchange.upgrade is not None:
            # The upgrade was refused: whatever the client sent after its head is not HTTP.
            cycle.keep_alive = False
        status = cycle.status = response.status
        headers = response.headers.raw
        no_body = cycle.method == b"HEAD" or status in _NO_BODY_STATUS or status < 200
        out = [status_line(cycle.version, status, response.reason)]
        keep_alive = cycle.keep_alive and not self._close_when_idle and not self._state.draining
        if isinstance(body, bytes):
            if not no_body:
                headers = [h for h in headers if h[0].lower() != b"content-length"]
                headers.append((b"Content-Length", b"%d" % len(body)))
            elif status >= 200 and cycle.method != b"HEAD" and status != 304:
                headers = [h for h in headers if h[0].lower() != b"content-length"]
        elif body.length is None and not no_body:
            if cycle.version == b"1.1":
                cycle.chunked_out = True
                headers = [*headers, (b"Transfer-Encoding", b"chunked")]
            else:
                keep_alive = False  # HTTP/1.0 client: the body ends when we close
        cycle.keep_alive = keep_alive
        if not keep_alive:
            headers = [*headers, (b"Connection", b"close")]
        elif cycle.version == b"1.0":
            headers = [*headers, (b"Connection", b"keep-alive")]
        out.append(serialize_headers(headers))
        out.append(b"X-Request-Id: %b\r\n\r\n" % cycle.exchange.request_id.encode("ascii"))
        if isinstance(body, bytes):
            if not no_body:
                out.append(body)
                cycle.bytes_out = len(body)
            transport.write(b"".join(out))
            self._finish(cycle)
            return
        if no_body:
            transport.write(b"".join(out))
            if not _is_complete(body):
                body.abort()
            self._finish(cycle)
            return
        self._streaming = body  # type: ignore[assignment]
        # The head waits for the body's first chunk, usually already read with it, so a small
        # response goes out in one write instead of two.
        writer = _ResponseWriter(self, cycle, b"".join(out))
        body.start(writer)
        writer.flush_head()

    def _write_local(self, response: Response, version: bytes, *, close: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        body = response.body if isinstance(response.body, bytes) else b""
        headers = [h for h in response.headers.raw if h[0].lower() not in HOP_BY_HOP]
        headers = [h for h in headers if h[0].lower() != b"content-length"]
        headers.append((b"Content-Length", b"%d" % len(body)))
        if close:
            headers.append((b"Connection", b"close"))
        head = status_line(version, response.status, response.reason) + serialize_headers(headers)
        transport.write(head + b"\r\n" + body)
        if close:
            self._close()

    def _finish(self, cycle: _Cycle) -> None:
        self._streaming = None
        body = cycle.body
        if body is not None and not body.complete:
            if self._can_linger(cycle, body):
                # Answered before the client finished sending (an early 413/302, or an upstream
                # that replied without reading): read and drop the rest, as nginx does, so the
                # client isn't reset mid-upload and the connection stays usable.
                self._arm(self._state.limits.header_timeout, self._on_linger_timeout)
                body.discard(on_end=lambda: self._finish(cycle))
                self._resume_reading("body")
                return
            cycle.keep_alive = False  # unread body bytes: we can't find the next request
        self._observe(cycle, cycle.status)
        self._active = None
        if not cycle.keep_alive or self._close_when_idle or self._state.draining:
            self._close()
            return
        if self._pipeline:
            self._start(self._pipeline.popleft())
        # Reading paused while a response was pending; the next request may still need its
        # body (or its head), so resume even when it was already queued.
        self._resume_reading("pipeline")
        if self._active is None and self._parsing is None:
            self._arm(self._state.limits.keepalive_timeout, self._on_idle_timeout)

    def _drop_pipeline(self, status: int) -> None:
        """Queued requests that will never be answered still end (metrics, access log)."""
        for cycle in self._pipeline:
            self._observe(cycle, status)
        self._pipeline.clear()

    def _observe(self, cycle: _Cycle, status: int) -> None:
        observer = self._state.observer
        if observer is not None and not cycle.observed:
            cycle.observed = True
            body = cycle.body
            observer.finished(
                cycle.exchange, status, body.received if body is not None else 0, cycle.bytes_out
            )

    def _can_linger(self, cycle: _Cycle, body: StreamBody) -> bool:
        if not cycle.keep_alive or self._closing or self._close_when_idle:
            return False
        if cycle.expect_continue:
            return False  # the client is waiting for our go-ahead: it won't send the body
        remaining = None if body.length is None else body.length - body.received
        return remaining is None or remaining <= MAX_LINGER_BYTES

    def _on_linger_timeout(self) -> None:
        if self._active is not None:
            self._close()

    def _send_continue(self, cycle: _Cycle) -> None:
        if cycle.expect_continue and self._transport is not None and not self._closing:
            cycle.expect_continue = False
            self._transport.write(_CONTINUE)

    # -- tunnel ------------------------------------------------------------------------------------
    def _start_tunnel(self, cycle: _Cycle, response: Response, tunnel: Tunnel) -> None:
        transport = self._transport
        assert transport is not None
        headers = response.headers.raw
        head = status_line(cycle.version, response.status, response.reason)
        transport.write(head + serialize_headers(headers) + b"\r\n")
        self._observe(cycle, response.status)
        self._active = None
        self._tunnel = tunnel
        self._pause_reasons.clear()
        tunnel.attach_client(transport, cycle.upgrade_buffer)
        transport.resume_reading()

    # -- timers and flow control -------------------------------------------------------------------
    def _arm(self, delay: float, action: Callable[[], None]) -> None:
        self._deadline = self._loop.time() + delay
        self._on_deadline = action

    def _clear_deadline(self) -> None:
        self._deadline = 0.0

    def check_deadline(self, now: float) -> None:
        if self._deadline and now >= self._deadline:
            self._deadline = 0.0
            self._on_deadline()

    def _on_header_timeout(self) -> None:
        if self._active is not None or self._closing:
            return
        if self._in_head:
            error = GatewayError("timed out reading the request head", status=408)
            error.error = "Request Timeout"
            self._write_local(self._state.error_response(None, error), b"1.1", close=True)
        else:
            self._close()

    def _on_idle_timeout(self) -> None:
        if self._active is None and not self._in_head:
            self._close()

    def _pause_reading(self, reason: str) -> None:
        if not self._pause_reasons and self._transport is not None:
            self._transport.pause_reading()
        self._pause_reasons.add(reason)

    def _resume_reading(self, reason: str) -> None:
        if reason in self._pause_reasons:
            self._pause_reasons.discard(reason)
            if not self._pause_reasons and self._transport is not None and not self._closing:
                self._transport.resume_reading()

    def _close(self) -> None:
        if not self._closing and self._transport is not None:
            self._closing = True
            self._clear_deadline()
            self._transport.close()


def _is_complete(body: object) -> bool:
    return bool(getattr(body, "complete", False))


class _ResponseWriter:
    """Writes a streamed response body to the client, re-chunking when the length is unknown.
    The response head is held until the first chunk (or ``flush_head``) so both share a write."""

    __slots__ = ("_conn", "_cycle", "_head")

    def __init__(self, conn: HttpServerProtocol, cycle: _Cycle, head: bytes) -> None:
        self._conn = conn
        self._cycle = cycle
        self._head: bytes | None = head

    def flush_head(self) -> None:
        head, self._head = self._head, None
        transport = self._conn._transport
        if head is not None and transport is not None and not transport.is_closing():
            transport.write(head)

    def on_data(self, data: bytes) -> None:
        transport = self._conn._transport
        if not data or transport is None or transport.is_closing():
            return
        self._cycle.bytes_out += len(data)
        payload = chunk(data) if self._cycle.chunked_out else data
        head, self._head = self._head, None
        transport.write(head + payload if head is not None else payload)

    def on_end(self) -> None:
        transport = self._conn._transport
        if transport is None or transport.is_closing():
            return
        head, self._head = self._head, None
        tail = LAST_CHUNK if self._cycle.chunked_out else b""
        if head is not None or tail:
            transport.write(head + tail if head is not None else tail)
        self._conn._finish(self._cycle)

    def on_error(self, exc: BaseException) -> None:
        conn = self._conn
        conn._streaming = None
        if self._head is not None:
            # Nothing has reached the client yet: it can still get an honest 502.
            self._head = None
            self._cycle.status = 502  # what the client gets, not what the upstream began
            error = UpstreamProtocolError(f"upstream body failed before the first byte: {exc}")
            response = conn._state.error_response(self._cycle.exchange, error)
            conn._write_local(response, self._cycle.version, close=True)
            return
        # Headers are already out: the only honest signal left is to cut the connection.
        log.info("upstream body failed mid-stream: %s", exc)
        conn.abort()
