"""The front door's refusals, below the socket: path normalisation with and without
``allow_encoded_slash``, what a request head may not be (version, Host, chunked HTTP/1.0), and a
connection that withdraws a request whose broken body came in the same read as its head
before its handler ever runs. (The same probes over real sockets, with counting upstreams:
tests/integration/test_http_hardening.py.)"""

from __future__ import annotations

import asyncio

import pytest

from gateway.engine.framing import normalize_path
from gateway.engine.listener import ServerLimits, ServerState
from gateway.engine.request_head import RequestHead
from gateway.engine.server import HttpServerProtocol
from gateway.errors import BadRequest, GatewayError
from gateway.exchange import Exchange, Response
from gateway.headers import Headers
from tests.unit.engine.fakes import FakeTransport, connect, settle

# -- paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/public/../admin", "/admin"),
        ("/a%2eb", "/a%2eb"),  # a dot inside a segment is no dot-segment
        ("/a/%2e%2ex", "/a/%2e%2ex"),
        ("/a/.%2ehidden", "/a/.%2ehidden"),
        ("/a/%252e%252e/b", "/a/%252e%252e/b"),  # %25 is a percent sign: data
        ("/a/.x;p=1/..y", "/a/.x;p=1/..y"),
        ("/a/b;p=1/../c", "/a/c"),  # parameters on an ordinary segment are fine
    ],
)
def test_what_stays_and_what_resolves(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("/a/%2e%2e/b", "encoded dot segments are not allowed"),
        ("/a/%2E%2E/b", "encoded dot segments are not allowed"),
        ("/a/.%2e/b", "encoded dot segments are not allowed"),
        ("/a/%2E./b", "encoded dot segments are not allowed"),
        ("/a/%2e", "encoded dot segments are not allowed"),
        ("/a/%2e%2e;x/b", "dot segments with path parameters are not allowed"),
        ("/a/..;/b", "dot segments with path parameters are not allowed"),
        ("/a/.;x/b", "dot segments with path parameters are not allowed"),
        ("/a/..%2fb", "encoded or backslash path separators are not allowed"),
        ("/a%5Cb", "encoded or backslash path separators are not allowed"),
        ("/a\\b", "encoded or backslash path separators are not allowed"),
    ],
)
def test_ambiguous_paths_are_refused_saying_why(raw: str, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        normalize_path(raw)
    assert refused.value.message == message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/a%2Fb", "/a%2Fb"),
        ("/a%5cb/c", "/a%5cb/c"),
        ("/a/%2e%2e/b", "/b"),  # resolved like "..": RFC 3986 §6.2.2.2
        ("/a/b/.%2E", "/a/"),
        ("/a/%2e/b", "/a/b"),
        ("/a/b%2Fc/../d", "/a/d"),  # b%2Fc is one segment here
        ("/a/x.%2fy", "/a/x.%2fy"),
    ],
)
def test_allow_encoded_lets_separators_through_and_resolves_encoded_dots(
    raw: str, expected: str
) -> None:
    assert normalize_path(raw, allow_encoded=True) == expected


@pytest.mark.parametrize(
    "raw", ["/a/..%2Fb", "/a/x%2F..", "/a/.%2e%5Cb", "/a/%2e%2e%2fb", "/a/..;x", "/a\\b"]
)
def test_allow_encoded_still_refuses_a_climb_hidden_in_a_segment(raw: str) -> None:
    with pytest.raises(BadRequest):
        normalize_path(raw, allow_encoded=True)


# -- heads ----------------------------------------------------------------------------------------


def _exchange(
    version: bytes, *fields: tuple[bytes, bytes], method: bytes = b"GET", target: bytes = b"/"
) -> Exchange:
    head = RequestHead()
    head.target.append(target)
    head.target_len = len(target)
    for name, value in fields:
        head.fields.append((name, value))
        if name.lower() == b"host":
            head.host = value
    exchange, _ = head.exchange(
        method, version, ("10.0.0.1", 1), ("10.0.0.2", 2), "http", lambda: "id"
    )
    return exchange


@pytest.mark.parametrize("version", [b"2.0", b"1.2", b"3.0"])
def test_versions_other_than_1_0_and_1_1_are_505(version: bytes) -> None:
    with pytest.raises(GatewayError) as refused:
        _exchange(version, (b"Host", b"x"))
    assert refused.value.status == 505
    assert refused.value.error == "HTTP Version Not Supported"


def test_a_request_line_without_a_version_is_400() -> None:
    # llhttp reads "GET /" (no version at all) as HTTP/0.9: malformed, not a version to refuse.
    with pytest.raises(GatewayError) as refused:
        _exchange(b"0.9", (b"Host", b"x"))
    assert refused.value.status == 400


def test_http_1_1_needs_a_host_and_http_1_0_does_not() -> None:
    with pytest.raises(BadRequest, match="Host"):
        _exchange(b"1.1")
    assert _exchange(b"1.0").original_host is None
    assert _exchange(b"1.1", (b"Host", b"x")).original_host == "x"


def test_chunked_http_1_0_is_refused() -> None:
    te = (b"Transfer-Encoding", b"chunked")
    with pytest.raises(BadRequest, match=r"HTTP/1\.0"):
        _exchange(b"1.0", te, method=b"POST")
    assert _exchange(b"1.1", (b"Host", b"x"), te, method=b"POST").request.method == "POST"


def test_allow_encoded_slash_reaches_the_path() -> None:
    head = RequestHead()
    head.target.append(b"/a%2Fb")
    head.target_len = 6
    head.fields.append((b"Host", b"x"))
    head.host = b"x"
    exchange, _ = head.exchange(
        b"GET", b"1.1", ("10.0.0.1", 1), ("10.0.0.2", 2), "http", lambda: "id", True
    )
    assert exchange.request.path == "/a%2Fb"


# -- the connection -------------------------------------------------------------------------------


def _error_response(exchange: Exchange | None, error: GatewayError) -> Response:
    path = exchange.request.path if exchange is not None else "-"
    return Response(error.status, Headers(), f"refused {path}".encode())


class Listener:
    def __init__(self) -> None:
        self.ended: list[tuple[str, int]] = []

    def started(self, exchange: Exchange) -> None:
        return None

    def finished(self, exchange: Exchange, status: int, bytes_in: int, bytes_out: int) -> None:
        self.ended.append((exchange.request.path, status))


def _serve(
    limits: ServerLimits | None = None,
) -> tuple[HttpServerProtocol, FakeTransport, list[str], Listener]:
    handled: list[str] = []

    async def handler(exchange: Exchange) -> Response:
        handled.append(exchange.request.path)
        body = exchange.body
        if body is not None:  # a forwarder would start sending here
            body.start(_Drop())
        return Response(200, Headers(), b"ok")

    listener = Listener()
    state = ServerState(
        handler, _error_response, limits or ServerLimits(), lambda: "id", observer=listener
    )
    conn = HttpServerProtocol(state)
    return conn, connect(conn), handled, listener


class _Drop:
    def on_data(self, chunk: bytes) -> None:
        return None

    def on_end(self) -> None:
        return None

    def on_error(self, exc: BaseException) -> None:
        return None


CHUNKED = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "rest", [b"zz\r\n", b"5\r\nhello\r\n0x1\r\n", b"5\r\nhelloXX"], ids=["size", "second", "data"]
)
async def test_a_broken_body_in_the_heads_read_is_refused_before_the_handler_runs(
    rest: bytes,
) -> None:
    conn, transport, handled, listener = _serve()
    conn.data_received(CHUNKED + rest)
    await settle()
    assert handled == []  # nothing was ever asked of an upstream
    assert transport.data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert transport.data.endswith(b"refused /up")  # the error knows its request
    assert transport.closed
    assert listener.ended == [("/up", 400)]


async def test_a_broken_body_in_a_later_read_fails_the_request_under_way() -> None:
    conn, transport, handled, listener = _serve()
    conn.data_received(CHUNKED + b"5\r\nhello\r\n")
    await settle()
    assert handled == ["/up"]  # under way: its handler runs
    conn.data_received(b"zz\r\n")
    await settle()
    assert transport.closed
    assert listener.ended == [("/up", 200)]


async def test_a_good_request_before_a_broken_one_in_the_same_read_is_still_served() -> None:
    conn, transport, handled, _ = _serve()
    conn.data_received(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + CHUNKED + b"zz\r\n")
    await settle()
    assert handled == ["/first"]
    assert transport.data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.closed


async def test_a_second_host_is_refused() -> None:
    conn, transport, handled, _ = _serve()
    conn.data_received(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    await settle()
    assert handled == []
    assert transport.data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert transport.closed


async def test_empty_lines_before_a_request_do_not_move_the_header_deadline() -> None:
    conn, transport, _, _ = _serve(ServerLimits(header_timeout=10.0))
    start = asyncio.get_running_loop().time()
    conn.data_received(b"\r\n")
    for _ in range(5):  # more empty lines, each a "first byte" were the timer re-armed
        await asyncio.sleep(0.01)
        conn.data_received(b"\r\n")
    conn.check_deadline(start + 9.9)
    assert not transport.closed
    conn.check_deadline(start + 10.05)
    assert transport.closed


async def test_a_trickled_head_is_408_at_the_deadline_from_its_first_byte() -> None:
    conn, transport, _, _ = _serve(ServerLimits(header_timeout=10.0))
    start = asyncio.get_running_loop().time()
    for byte in b"GET / HTTP/1.1\r\nHo":
        conn.data_received(bytes([byte]))
    await asyncio.sleep(0.02)
    conn.check_deadline(start + 10.05)
    assert transport.data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert transport.closed


async def test_a_head_begun_behind_a_request_in_flight_still_has_a_deadline() -> None:
    """A client that sends a request and the start of the next, then goes silent, must not
    hold the connection for ever: the head's deadline runs from the answer to the first."""
    conn, transport, handled, _ = _serve(ServerLimits(header_timeout=10.0))
    conn.data_received(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /sec")
    await settle()
    assert handled == ["/first"]
    answered = asyncio.get_running_loop().time()
    conn.check_deadline(answered + 9.9)
    assert not transport.closed
    conn.check_deadline(answered + 10.1)
    assert transport.data.count(b"HTTP/1.1 408 Request Timeout\r\n") == 1
    assert transport.closed
