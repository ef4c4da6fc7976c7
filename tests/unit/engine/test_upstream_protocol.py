"""``UpstreamProtocol`` driven through a recording transport and a fake owner (the pool's seam):
responses fed with ``data_received``, what the owner is told checked in order. No sockets."""

from __future__ import annotations

import asyncio

import pytest

from gateway.engine.body import StreamBody
from gateway.engine.upgrade import Tunnel
from gateway.engine.upstream import ConnectionLostBeforeResponse, UpstreamProtocol
from gateway.errors import UpstreamProtocolError, UpstreamTimeout
from gateway.exchange import BodySource, Response
from tests.unit.engine.fakes import FakeTransport, Owner, Sink, connect

HEAD = b"GET / HTTP/1.1\r\nHost: up\r\n\r\n"


def upstream() -> tuple[UpstreamProtocol, FakeTransport, Owner]:
    owner = Owner()
    conn = UpstreamProtocol(owner, ("up", 80, False, None))
    return conn, connect(conn), owner


def send(
    conn: UpstreamProtocol,
    body: BodySource | None = None,
    *,
    head_request: bool = False,
    upgrade: bool = False,
    timeout: float = 5.0,
) -> asyncio.Future[Response]:
    chunked = body is not None and body.length is None
    return conn.send(
        HEAD,
        body,
        chunked=chunked,
        head_request=head_request,
        upgrade=upgrade,
        response_timeout=timeout,
    )


def streamed(response: Response) -> StreamBody:
    assert isinstance(response.body, StreamBody)
    return response.body


async def test_a_content_length_response_is_released_only_once_complete() -> None:
    conn, transport, owner = upstream()
    future = send(conn)
    assert transport.take() == HEAD
    assert owner.events == ["busy"]
    conn.data_received(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\n"
        b"X-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Request-Id: theirs\r\nX-End: 2\r\n\r\nhe"
    )
    response = future.result()
    assert response.status == 200
    # Hop-by-hop fields, those named in Connection and the upstream's request id are not
    # passed on; the framing field is.
    assert response.headers.raw == [(b"Content-Length", b"5"), (b"X-End", b"2")]
    body = streamed(response)
    assert body.length == 5
    assert "release" not in owner.events  # the body is still arriving
    sink = Sink()
    body.start(sink)
    conn.data_received(b"llo")
    assert sink.data == [b"he", b"llo"] and sink.ended
    assert owner.events == ["busy", "idle", "release"]
    assert conn.usable and conn.requests == 1


async def test_a_chunked_response_is_dechunked_for_re_framing() -> None:
    conn, _, owner = upstream()
    future = send(conn)
    conn.data_received(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    response = future.result()
    assert response.headers.raw == []  # the client side frames it anew
    body = streamed(response)
    assert body.length is None
    sink = Sink()
    body.start(sink)
    assert sink.data == [b"abc", b"de"] and sink.ended
    assert owner.events[-1] == "release"


async def test_a_head_response_has_no_body_and_the_connection_is_reused() -> None:
    conn, _, owner = upstream()
    future = send(conn, head_request=True)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    response = future.result()
    assert response.body == b""
    assert response.headers.raw == [(b"Content-Length", b"100")]
    assert owner.events == ["busy", "idle", "release"]
    # The 100 bytes announced never come: the next response parses from its first byte.
    future = send(conn)
    conn.data_received(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert future.result().status == 204


async def test_a_connection_lost_before_any_byte_may_be_retried() -> None:
    conn, _, owner = upstream()
    future = send(conn)
    conn.connection_lost(None)
    with pytest.raises(ConnectionLostBeforeResponse):
        future.result()
    assert owner.events[-1] == "forget"
    assert not conn.usable


async def test_a_connection_lost_mid_head_is_not_retryable() -> None:
    conn, _, _ = upstream()
    future = send(conn)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Le")
    conn.connection_lost(None)
    with pytest.raises(UpstreamProtocolError) as caught:
        future.result()
    assert not isinstance(caught.value, ConnectionLostBeforeResponse)


async def test_a_close_delimited_body_ends_at_close_and_is_not_reused() -> None:
    conn, _, owner = upstream()
    future = send(conn)
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\nall of it")
    body = streamed(future.result())
    sink = Sink()
    body.start(sink)
    conn.connection_lost(None)
    assert sink.data == [b"all of it"] and sink.ended and sink.error is None
    assert "release" not in owner.events


async def test_an_early_answer_to_an_unsent_body_closes_the_connection() -> None:
    conn, transport, owner = upstream()
    request_body = StreamBody(10, pause_reading=_nothing, resume_reading=_nothing, abort=_nothing)
    future = send(conn, request_body)
    request_body.feed(b"part")
    conn.data_received(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
    assert future.result().status == 413
    assert "release" not in owner.events  # the request was not fully sent
    request_body.feed(b"of it!")
    request_body.feed_end()
    assert transport.closed and "release" not in owner.events


async def test_a_chunked_request_body_is_rechunked_and_the_wait_starts_when_it_is_sent() -> None:
    conn, transport, owner = upstream()
    request_body = StreamBody(None, pause_reading=_nothing, resume_reading=_nothing, abort=_nothing)
    future = send(conn, request_body)
    request_body.feed(b"abc")
    request_body.feed_end()
    assert transport.take() == HEAD + b"3\r\nabc\r\n" + b"0\r\n\r\n"
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert future.result().status == 200
    assert owner.events[-1] == "release"


async def test_an_interim_response_is_skipped() -> None:
    conn, _, _ = upstream()
    future = send(conn)
    conn.data_received(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert not future.done()
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert future.result().status == 200


async def test_silence_past_the_response_timeout_fails_the_request() -> None:
    conn, transport, owner = upstream()
    future = send(conn, timeout=2.0)
    now = asyncio.get_running_loop().time()
    conn.check_deadline(now + 1.0)
    assert not future.done()
    conn.check_deadline(now + 2.5)
    with pytest.raises(UpstreamTimeout):
        future.result()
    assert "idle" in owner.events and transport.aborted


async def test_a_101_hands_over_a_tunnel_with_the_switch_fields() -> None:
    conn, transport, _ = upstream()
    future = send(conn, upgrade=True)
    conn.data_received(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Keep-Alive: x\r\nSec-WebSocket-Accept: k\r\n\r\nframe"
    )
    response = future.result()
    assert response.status == 101
    assert response.headers.raw == [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", b"k"),
    ]
    assert isinstance(response.body, Tunnel)
    assert not transport.reading  # until the client side is attached
    client = FakeTransport()
    response.body.attach_client(client, b"")
    assert client.data == b"frame" and transport.reading


async def test_an_unasked_switch_is_a_protocol_error() -> None:
    conn, _, _ = upstream()
    future = send(conn)
    conn.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
    with pytest.raises(UpstreamProtocolError):
        future.result()


def _nothing() -> None:
    return None
