"""``HttpServerProtocol`` driven through a recording transport: bytes in with ``data_received``,
a trivial async handler, and what the client would read checked byte for byte. No sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.engine.body import StreamBody
from gateway.engine.cycle import CLIENT_CLOSED
from gateway.engine.listener import ServerLimits, ServerState
from gateway.engine.server import HttpServerProtocol
from gateway.errors import GatewayError
from gateway.exchange import Exchange, Response
from gateway.headers import Headers
from tests.unit.engine.fakes import FakeTransport, Sink, connect, settle

Handler = Callable[[Exchange], Awaitable[Response]]


def error_response(exchange: Exchange | None, error: GatewayError) -> Response:
    return Response(error.status, Headers([(b"Content-Type", b"text/plain")]), b"refused")


class Listener:
    """Records what the engine tells its ``ExchangeListener``."""

    def __init__(self) -> None:
        self.begun: list[str] = []
        self.ended: list[tuple[str, int, int, int]] = []

    def started(self, exchange: Exchange) -> None:
        self.begun.append(exchange.request.path)

    def finished(self, exchange: Exchange, status: int, bytes_in: int, bytes_out: int) -> None:
        self.ended.append((exchange.request.path, status, bytes_in, bytes_out))


def serve(
    handler: Handler, limits: ServerLimits | None = None, listener: Listener | None = None
) -> tuple[HttpServerProtocol, FakeTransport, ServerState]:
    state = ServerState(
        handler,
        error_response,
        limits or ServerLimits(),
        request_id=lambda: "id-1",
        observer=listener,
    )
    conn = HttpServerProtocol(state)
    return conn, connect(conn), state


async def hello(exchange: Exchange) -> Response:
    return Response(200, Headers([(b"Content-Type", b"text/plain")]), b"hello")


async def test_get_is_answered_and_kept_alive_until_the_idle_timeout() -> None:
    seen: list[tuple[str, str, str, str, str]] = []

    async def handler(exchange: Exchange) -> Response:
        request = exchange.request
        seen.append(
            (request.method, request.path, request.query, exchange.client_host, exchange.scheme)
        )
        return await hello(exchange)

    conn, transport, _ = serve(handler)
    conn.data_received(b"GET /a/./b?x=1 HTTP/1.1\r\nHost: example\r\n\r\n")
    await settle()
    assert seen == [("GET", "/a/b", "x=1", "10.0.0.1", "http")]
    assert transport.data == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
        b"X-Request-Id: id-1\r\n\r\nhello"
    )
    assert not transport.closed and transport.reading
    now = asyncio.get_running_loop().time()
    conn.check_deadline(now + ServerLimits().keepalive_timeout - 1)
    assert not transport.closed
    conn.check_deadline(now + ServerLimits().keepalive_timeout + 1)
    assert transport.closed


@pytest.mark.parametrize(
    ("sent", "kept"), [(b"abc-123", b"abc-123"), (b"bad id; x", b"id-1"), (b"x" * 129, b"id-1")]
)
async def test_a_sane_client_request_id_is_kept(sent: bytes, kept: bytes) -> None:
    conn, transport, _ = serve(hello)
    conn.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + sent + b"\r\n\r\n")
    await settle()
    assert b"\r\nX-Request-Id: " + kept + b"\r\n" in transport.data


async def test_pipelined_requests_are_answered_in_order() -> None:
    gate = asyncio.Event()

    async def handler(exchange: Exchange) -> Response:
        if exchange.request.path == "/slow":
            await gate.wait()
        return Response(200, body=exchange.request.path.encode())

    conn, transport, _ = serve(handler)
    conn.data_received(
        b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    await settle()
    assert transport.data == b""  # the second waits behind the first...
    assert not transport.reading  # ...and the client is not read meanwhile
    gate.set()
    await settle()
    data = transport.data
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.index(b"\r\n\r\n/slow") < data.index(b"\r\n\r\n/fast")
    assert transport.reading and not transport.closed


async def test_content_length_with_transfer_encoding_is_refused_and_closed() -> None:
    handled: list[Exchange] = []

    async def handler(exchange: Exchange) -> Response:
        handled.append(exchange)
        return await hello(exchange)

    conn, transport, _ = serve(handler)
    conn.data_received(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    await settle()
    assert handled == []
    assert transport.data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close\r\n" in transport.data
    assert transport.data.count(b"HTTP/1.1") == 1
    assert transport.closed


@pytest.mark.parametrize("complete", [True, False])
async def test_a_head_over_the_limit_is_refused_with_431(complete: bool) -> None:
    conn, transport, _ = serve(hello, ServerLimits(max_head_bytes=256))
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 400 + b"\r\n"
    conn.data_received(head + (b"\r\n" if complete else b""))
    await settle()
    assert transport.data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert transport.closed


async def test_too_many_header_fields_is_431() -> None:
    conn, transport, _ = serve(hello, ServerLimits(max_headers=3))
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(4))
    conn.data_received(b"GET / HTTP/1.1\r\n" + fields + b"\r\n")
    await settle()
    assert transport.data.startswith(b"HTTP/1.1 431 ")


async def test_a_body_of_unknown_length_is_rechunked_with_the_head_in_its_first_write() -> None:
    bodies: list[StreamBody] = []

    async def handler(exchange: Exchange) -> Response:
        body = StreamBody(None, pause_reading=_nothing, resume_reading=_nothing, abort=_nothing)
        body.feed(b"abc")  # already read when the response starts
        bodies.append(body)
        return Response(200, Headers([(b"Content-Type", b"text/plain")]), body)

    conn, transport, _ = serve(handler)
    conn.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert transport.writes == [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        b"X-Request-Id: id-1\r\n\r\n3\r\nabc\r\n"
    ]
    bodies[0].feed(b"de")
    bodies[0].feed_end()
    assert transport.writes[1:] == [b"2\r\nde\r\n", b"0\r\n\r\n"]
    assert not transport.closed


async def test_an_http10_client_gets_an_unknown_length_body_delimited_by_close() -> None:
    async def handler(exchange: Exchange) -> Response:
        body = StreamBody(None, pause_reading=_nothing, resume_reading=_nothing, abort=_nothing)
        body.feed(b"abc")
        body.feed_end()
        return Response(200, Headers(), body)

    conn, transport, _ = serve(handler)
    conn.data_received(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    await settle()
    assert transport.data == (
        b"HTTP/1.0 200 OK\r\nConnection: close\r\nX-Request-Id: id-1\r\n\r\nabc"
    )
    assert transport.closed


async def test_the_request_body_streams_to_the_handler() -> None:
    async def echo(exchange: Exchange) -> Response:
        body = exchange.body
        assert body is not None and body.length == 11
        sink = _Collect()
        body.start(sink)
        return Response(200, body=await sink.done)

    conn, transport, _ = serve(echo)
    conn.data_received(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello")
    await settle()
    assert transport.data == b""
    conn.data_received(b" world")
    await settle()
    assert transport.data.endswith(b"\r\n\r\nhello world")


async def test_expect_continue_is_answered_when_the_body_is_first_read() -> None:
    async def echo(exchange: Exchange) -> Response:
        await asyncio.sleep(0)
        assert exchange.body is not None
        sink = _Collect()
        exchange.body.start(sink)
        return Response(200, body=await sink.done)

    conn, transport, _ = serve(echo)
    conn.data_received(
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    )
    await settle()
    assert transport.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.data_received(b"ok")
    await settle()
    assert transport.take().endswith(b"\r\n\r\nok")


async def test_an_incomplete_head_at_the_header_timeout_gets_408() -> None:
    conn, transport, _ = serve(hello)
    conn.data_received(b"GET / HTTP/1.1\r\nHost:")
    now = asyncio.get_running_loop().time()
    conn.check_deadline(now + ServerLimits().header_timeout + 1)
    assert transport.data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert transport.closed


async def test_the_listener_hears_of_each_request_and_of_the_client_going_away() -> None:
    gate = asyncio.Event()

    async def handler(exchange: Exchange) -> Response:
        if exchange.request.path == "/wait":
            await gate.wait()
        return Response(200, body=b"four")

    listener = Listener()
    conn, _, _ = serve(handler, listener=listener)
    conn.data_received(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    await settle()
    conn.data_received(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    conn.connection_lost(None)
    await settle()
    assert listener.begun == ["/a", "/wait"]
    assert listener.ended == [("/a", 200, 3, 4), ("/wait", CLIENT_CLOSED, 0, 0)]


async def test_a_body_failing_before_its_head_went_out_becomes_502() -> None:
    async def handler(exchange: Exchange) -> Response:
        body = StreamBody(5, pause_reading=_nothing, resume_reading=_nothing, abort=_nothing)
        # The upstream's body broke between its head and the response being written.
        body.feed_error(ConnectionResetError("upstream went away"))
        return Response(200, Headers([(b"Content-Length", b"5")]), body)

    conn, transport, _ = serve(handler)
    conn.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert transport.data.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"HTTP/1.1 200" not in transport.data
    assert transport.closed and not transport.aborted


async def test_a_body_failing_mid_stream_cuts_the_connection() -> None:
    bodies: list[StreamBody] = []

    async def handler(exchange: Exchange) -> Response:
        body = StreamBody(5, pause_reading=_nothing, resume_reading=_nothing, abort=_nothing)
        body.feed(b"he")
        bodies.append(body)
        return Response(200, Headers([(b"Content-Length", b"5")]), body)

    conn, transport, _ = serve(handler)
    conn.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert transport.data.endswith(b"\r\n\r\nhe")
    bodies[0].feed_error(ConnectionResetError("upstream went away"))
    assert transport.aborted


async def test_draining_closes_idle_connections_and_busy_ones_after_their_response() -> None:
    gate = asyncio.Event()

    async def handler(exchange: Exchange) -> Response:
        await gate.wait()
        return await hello(exchange)

    state = ServerState(handler, error_response, ServerLimits(), request_id=lambda: "id")
    idle, busy = HttpServerProtocol(state), HttpServerProtocol(state)
    idle_transport, busy_transport = connect(idle), connect(busy)
    busy.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    state.drain()
    assert idle_transport.closed and not busy_transport.closed
    gate.set()
    await settle()
    assert b"\r\nConnection: close\r\n" in busy_transport.data
    assert busy_transport.closed
    assert await state.wait_closed(0.1)
    state.close()


class _Collect:
    """A body sink that resolves ``done`` with the whole body."""

    def __init__(self) -> None:
        self._sink = Sink()
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_data(self, chunk: bytes) -> None:
        self._sink.on_data(chunk)

    def on_end(self) -> None:
        self.done.set_result(b"".join(self._sink.data))

    def on_error(self, exc: BaseException) -> None:
        self.done.set_exception(exc)


def _nothing() -> None:
    return None
