"""The client-facing side of the data plane: one ``asyncio.Protocol`` per connection, parsed by
httptools (llhttp, strict mode), requests handled one at a time per connection (pipelined requests
queue behind the active one and reading pauses), responses written with one write per head.

Every failure here is a connection-level decision (400/408/431 and close, or just close); all
request-level failures are mapped to responses by the handler's error layer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools

from gateway.engine.body import StreamBody
from gateway.engine.cycle import CLIENT_CLOSED, RequestCycle
from gateway.engine.framing import serialize_headers, status_line
from gateway.engine.listener import ServerState
from gateway.engine.request_head import RequestHead
from gateway.engine.response_writer import ResponseWriter, local_response, response_head
from gateway.engine.upgrade import Tunnel
from gateway.errors import BadRequest, GatewayError, HeadersTooLarge, UpstreamProtocolError
from gateway.exchange import BodySource, ClientCertificate, Exchange, Response, Upgrade

log = logging.getLogger("meshgate.engine")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _nothing() -> None:
    """The deadline action of a connection that is gone."""


def _not_begun(cycle: RequestCycle) -> bool:
    """Whether the cycle's handler task exists but has not taken its first step. A task runs
    only once the loop has control again, so one started during this read has not; asked only
    when a request is refused, never on the way of a good one. A flag the task sets, not the
    coroutine's state: a coroutine compiled with mypyc has no state ``inspect`` can read."""
    return cycle.task is not None and not cycle.begun


class HttpServerProtocol(asyncio.Protocol):
    """One client connection. Its listener (``ServerState``) may call ``check_deadline``,
    ``close_when_idle`` and ``abort``; a streamed response's writer calls ``response_done`` or
    ``response_failed``. The rest is driven by the transport and the parser."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        # None once the connection is gone (see connection_lost).
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._client = ("", 0)
        self._server = ("", 0)
        # head being parsed
        self._head = RequestHead()
        self._head_bytes = 0
        self._in_head = False
        # The header timer of the head now arriving is armed: it runs from the head's first
        # byte, and nothing received before the head is complete moves it (slowloris).
        self._head_timed = False
        self._parse_error: GatewayError | None = None
        self._parsing: RequestCycle | None = None
        # request being answered, and the ones pipelined behind it
        self._active: RequestCycle | None = None
        self._pipeline: deque[RequestCycle] = deque()
        self._streaming: BodySource | None = None  # response body being written
        self._pause_reasons: set[str] = set()
        # When ``_on_deadline`` fires (monotonic; 0: none); the listener's sweep checks it.
        self._deadline = 0.0
        self._on_deadline: Callable[[], None] = self._on_idle_timeout
        self._tunnel: Tunnel | None = None
        self._closing = False
        self._close_when_idle = False
        self._client_cert: ClientCertificate | None = None

    @property
    def active_exchange(self) -> Exchange | None:
        active = self._active
        return active.exchange if active is not None else None

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
        identify = self._state.identify_client
        if identify is not None:
            self._client_cert = identify(transport)  # once: the handshake is over
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
        # The parser's callbacks and the deadline action are bound to this protocol: dropped,
        # the connection (with a TLS transport's buffers) is freed at once by reference
        # counting, not at the next full collection, which the tuned GC makes rare (1,000
        # closed TLS connections held ~200 MiB until then). Nothing reads either once closing.
        self._parser = None
        self._on_deadline = _nothing
        if self._tunnel is not None:
            self._tunnel.client_lost()
            return
        gone = ConnectionResetError("client closed the connection")
        for cycle in (self._active, *self._pipeline):
            if cycle is not None:
                cycle.abandon(self._state.observer, gone)
        if self._streaming is not None:
            self._streaming.abort()
            self._streaming = None
        self._pipeline.clear()

    def eof_received(self) -> bool | None:
        # A TLS transport closes after the client's EOF whatever this returns (no half-close
        # there): saying "keep open" would only get a warning logged per connection.
        half_open = self._state.scheme != "https"
        if self._tunnel is not None:
            return self._tunnel.client_eof() and half_open
        # Half-close from the client: finish what is in flight, then close. A request whose
        # head or body was cut off by the FIN can never complete, so it fails now.
        self._close_when_idle = True
        parsing = self._parsing
        if parsing is not None and parsing.body is not None and not parsing.body.complete:
            parsing.body.feed_error(ConnectionResetError("client closed mid-body"))
            self._drop_pipeline(CLIENT_CLOSED)
        if self._active is None:
            self._close()
        return half_open

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
        if not self._head_timed and self._parsing is None and self._active is None:
            # First byte of a new request on an idle connection: the header timer replaces the
            # idle timer, once (empty lines before a request, which llhttp skips without a
            # message begun, must not re-arm it).
            self._head_timed = True
            self._arm(self._state.limits.header_timeout, self._on_header_timeout)
        if self._in_head or self._parsing is None:
            self._head_bytes += len(data)
        parser = self._parser
        assert parser is not None  # not closing
        try:
            parser.feed_data(data)
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
        active = self._active
        if active is not None and active is self._parsing and _not_begun(active):
            # Its head and the broken bytes after it came in one read: its handler has not run
            # yet, so nothing of it has gone upstream. It never will: it ends here, refused.
            self._withdraw(active, error)
            return
        if active is None:
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

    def _withdraw(self, cycle: RequestCycle, error: GatewayError) -> None:
        """Cancel a request whose handler has not started and answer ``error`` instead."""
        assert cycle.task is not None
        cycle.task.cancel()  # before its first step: the coroutine never runs
        self._active = self._parsing = None
        cycle.report(self._state.observer, error.status)
        self._drop_pipeline(error.status)
        response = self._state.error_response(cycle.exchange, error)
        self._write_local(response, cycle.version, close=True)

    # httptools callbacks ------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_head = True
        self._head = RequestHead()
        self._parse_error = None

    def on_url(self, url: bytes) -> None:
        head = self._head
        head.target.append(url)
        head.target_len += len(url)
        if head.target_len > self._state.limits.max_url_bytes:
            self._parse_error = GatewayError("request target too long", status=414)
            self._parse_error.error = "URI Too Long"
            raise self._parse_error

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self._head
        fields = head.fields
        fields.append((name, value))
        size = len(name)
        if size == 4 and name.lower() == b"host":
            if head.host is not None:
                # RFC 9112 §3.2: a second Host is a 400 (a route may match one, an upstream
                # read the other).
                self._parse_error = BadRequest("more than one Host header")
                raise self._parse_error
            head.host = value
        elif size == 12 and name.lower() == b"x-request-id":
            head.request_id = value
        elif size == 23 and name.lower() == b"x-forwarded-client-cert":
            # Only the gateway writes it, from the verified certificate: a client's is never
            # seen by a route nor sent on (a forged identity).
            fields.pop()
        if len(fields) > self._state.limits.max_headers:
            self._parse_error = HeadersTooLarge("too many request header fields")
            raise self._parse_error

    def on_headers_complete(self) -> None:
        received, self._head_bytes = self._head_bytes, 0
        self._in_head = self._head_timed = False
        self._deadline = 0.0  # the header timeout is over (inlined: once per request)
        state = self._state
        limits = state.limits
        # The bytes read while this head was arriving bound its size, so the exact sum is only
        # needed when they could exceed the limit (or for a head pipelined in the same read).
        max_head = limits.max_head_bytes
        if (received == 0 or received > max_head) and self._head.size() > max_head:
            self._parse_error = HeadersTooLarge("request head exceeds the size limit")
            raise self._parse_error
        parser = self._parser
        assert parser is not None  # it is calling us
        method = parser.get_method()
        version = parser.get_http_version().encode("latin-1")
        try:
            exchange, framing = self._head.exchange(
                method,
                version,
                self._client,
                self._server,
                state.scheme,
                state.request_id,
                limits.allow_encoded_slash,
            )
        except GatewayError as err:
            self._parse_error = err  # what the client is answered, once llhttp gives up
            raise
        if self._client_cert is not None:
            exchange.client_cert = self._client_cert
        headers = exchange.request.headers
        keep_alive = bool(parser.should_keep_alive()) and not self._close_when_idle
        cycle = RequestCycle(exchange, method, version, keep_alive)
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
    def _start(self, cycle: RequestCycle) -> None:
        self._active = cycle
        cycle.task = self._loop.create_task(self._run(cycle))

    async def _run(self, cycle: RequestCycle) -> None:
        cycle.begun = True
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

    def _send(self, cycle: RequestCycle, response: Response) -> None:
        transport = self._transport
        assert transport is not None
        body = response.body
        if cycle.body is not None and not cycle.body.started:
            cycle.body.discard()
        if isinstance(body, Tunnel):
            self._start_tunnel(cycle, response, body)
            return
        # A refused upgrade: whatever the client sent after its head is not HTTP.
        keep_alive = (
            cycle.keep_alive
            and cycle.exchange.upgrade is None
            and not self._close_when_idle
            and not self._state.draining
        )
        head, has_body = response_head(cycle, response, keep_alive)
        if isinstance(body, bytes):
            if has_body:
                head.append(body)
                cycle.bytes_out = len(body)
            transport.write(b"".join(head))
            self.response_done(cycle)
            return
        if not has_body:
            transport.write(b"".join(head))
            if not getattr(body, "complete", False):
                body.abort()
            self.response_done(cycle)
            return
        self._streaming = body
        # The head waits for the body's first chunk, usually already read with it, so a small
        # response goes out in one write instead of two.
        writer = ResponseWriter(self, transport, cycle, b"".join(head))
        body.start(writer)
        writer.flush_head()

    def _write_local(self, response: Response, version: bytes, *, close: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(local_response(response, version, close=close))
        if close:
            self._close()

    def response_done(self, cycle: RequestCycle) -> None:
        self._streaming = None
        body = cycle.body
        if body is not None and not body.complete:
            if not self._closing and not self._close_when_idle and cycle.can_linger(body):
                # Answered before the client finished sending (an early 413/302, or an upstream
                # that replied without reading): read and drop the rest, as nginx does, so the
                # client isn't reset mid-upload and the connection stays usable.
                self._arm(self._state.limits.header_timeout, self._on_linger_timeout)
                body.discard(on_end=lambda: self.response_done(cycle))
                self._resume_reading("body")
                return
            cycle.keep_alive = False  # unread body bytes: we can't find the next request
        cycle.report(self._state.observer, cycle.status)
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
            if self._in_head:
                # The next head began while this request was answered, and no timer ran for
                # it: its deadline counts from now (a client that sent half a head and went
                # silent would otherwise hold the connection for ever).
                self._head_timed = True
                self._arm(self._state.limits.header_timeout, self._on_header_timeout)
            else:
                self._arm(self._state.limits.keepalive_timeout, self._on_idle_timeout)

    def response_failed(self, cycle: RequestCycle, exc: BaseException, *, head_sent: bool) -> None:
        self._streaming = None
        if not head_sent:
            # Nothing has reached the client yet: it can still get an honest 502.
            cycle.status = 502  # what the client gets, not what the upstream began
            error = UpstreamProtocolError(f"upstream body failed before the first byte: {exc}")
            response = self._state.error_response(cycle.exchange, error)
            self._write_local(response, cycle.version, close=True)
            return
        # Headers are already out: the only honest signal left is to cut the connection.
        log.info("upstream body failed mid-stream: %s", exc)
        self.abort()

    def _drop_pipeline(self, status: int) -> None:
        """Queued requests that will never be answered still end (metrics, access log)."""
        observer = self._state.observer
        for cycle in self._pipeline:
            cycle.report(observer, status)
        self._pipeline.clear()

    def _on_linger_timeout(self) -> None:
        if self._active is not None:
            self._close()

    def _send_continue(self, cycle: RequestCycle) -> None:
        if cycle.expect_continue and self._transport is not None and not self._closing:
            cycle.expect_continue = False
            self._transport.write(_CONTINUE)

    # -- tunnel ------------------------------------------------------------------------------------
    def _start_tunnel(self, cycle: RequestCycle, response: Response, tunnel: Tunnel) -> None:
        transport = self._transport
        assert transport is not None
        head = status_line(cycle.version, response.status, response.reason)
        transport.write(head + serialize_headers(response.headers.raw) + b"\r\n")
        cycle.report(self._state.observer, response.status)
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
