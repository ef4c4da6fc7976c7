"""The front door probed as an attacker would: raw bytes over a socket to the real gateway
process, with upstreams that count what reaches them.

Each refused request must get its 4xx, have its connection closed by the gateway, and leave
the upstreams untouched — not a byte, not a connection. A request whose body breaks off after
its head went upstream must never arrive there complete, and that upstream connection must
never carry another request. Path tricks must never land a request for ``/admin`` on the
``/public/**`` route (which lacks the admin route's filter). Slow clients are cut off at their
deadline while everyone else is served, and no error body names an internal address.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
import pytest_asyncio

from tests.support.counting_upstream import CountingUpstream
from tests.support.gateway import GatewayProcess, spawn_gateway
from tests.support.ports import free_port
from tests.support.raw_http import exchange_raw, status_of

pytestmark = [
    pytest.mark.slow,  # three gateway processes and timing tests: not in the edit-test loop
    # The gateway processes and the counting upstreams are shared by the module's tests.
    pytest.mark.asyncio(loop_scope="module"),
]

# A short header and keep-alive timeout, so the slowloris tests take seconds, not minutes.
TIMEOUT = 1.0


@dataclass
class Upstreams:
    admin: CountingUpstream
    public: CountingUpstream
    hung: CountingUpstream  # reads requests and never answers (504)
    dead_port: int  # nothing listens there (502)

    def all(self) -> tuple[CountingUpstream, ...]:
        return (self.admin, self.public, self.hung)

    def reset(self) -> None:
        for upstream in self.all():
            upstream.reset()

    def untouched(self) -> bool:
        return all(upstream.nothing_received() for upstream in self.all())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ups() -> AsyncIterator[Upstreams]:
    admin = await CountingUpstream("admin").start()
    public = await CountingUpstream("public").start()
    hung = await CountingUpstream("hung", answer=False).start()
    yield Upstreams(admin, public, hung, free_port())
    for upstream in (admin, public, hung):
        await upstream.stop()


def _routes(ups: Upstreams) -> str:
    # /admin/** is the protected route: its filter marks every request it forwards, so a
    # request for an admin path that arrives without the mark came in by another route.
    return f"""
routes:
  - id: admin
    uri: {ups.admin.url}
    predicates: [Path=/admin/**]
    filters: ["AddRequestHeader=X-Route, admin"]
  - id: public
    uri: {ups.public.url}
    predicates: [Path=/public/**]
  - id: dead
    uri: http://127.0.0.1:{ups.dead_port}
    predicates: [Path=/dead/**]
  - id: nobody
    uri: lb://nobody
    predicates: [Path=/nobody/**]
  - id: hung
    uri: {ups.hung.url}
    predicates: [Path=/hung/**]
    metadata: {{response-timeout: 300}}
  - id: ws
    uri: no://op
    predicates: [Path=/ws/**]
    filters: ["SetRequestUri=ws://127.0.0.1:{ups.dead_port}"]
"""


def _spawn(ups: Upstreams, directory: Path, **env: str) -> Iterator[GatewayProcess]:
    config = directory / "routes.yml"
    config.write_text(_routes(ups))
    process = spawn_gateway(config, directory, **env)
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture(scope="module")
def gw(ups: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The gateway with its defaults but for the header and keep-alive timeouts."""
    yield from _spawn(
        ups,
        tmp_path_factory.mktemp("strict"),
        GATEWAY_HEADER_TIMEOUT=str(TIMEOUT),
        GATEWAY_KEEPALIVE_TIMEOUT=str(TIMEOUT),
    )


@pytest.fixture(scope="module")
def gw_allow(ups: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The same routes with GATEWAY_ALLOW_ENCODED_SLASH=true."""
    yield from _spawn(ups, tmp_path_factory.mktemp("allow"), GATEWAY_ALLOW_ENCODED_SLASH="true")


@pytest.fixture(autouse=True)
def _fresh_counts(ups: Upstreams) -> None:
    ups.reset()


async def settle() -> None:
    """Long enough for anything the gateway was going to send upstream to have arrived."""
    await asyncio.sleep(0.2)


def split(response: bytes) -> tuple[bytes, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head, body


def refused_and_closed(response: bytes, status: int = 400) -> None:
    assert response and status_of(response) == status, response[:300]
    head, body = split(response)
    assert b"\r\nConnection: close" in head
    assert json.loads(body)["status"] == status
    assert not response.endswith(b"<timeout>")  # the gateway closed the connection itself


def head(request_line: bytes, *fields: bytes) -> bytes:
    return request_line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


POST = b"POST /public/x HTTP/1.1"
HOST = b"Host: x"
TE = b"Transfer-Encoding: chunked"
CLOSE = b"Connection: close"

# Every request here is ambiguous or malformed: 400, the connection closed, nothing upstream.
REFUSED = {
    # -- framing: Content-Length and Transfer-Encoding
    "CL.TE": head(POST, HOST, b"Content-Length: 6", TE) + b"0\r\n\r\nG",
    "TE.CL": head(POST, HOST, TE, b"Content-Length: 3") + b"8\r\nSMUGGLED\r\n0\r\n\r\n",
    "CL conflicting": head(POST, HOST, b"Content-Length: 1", b"Content-Length: 2") + b"ab",
    "CL repeated": head(POST, HOST, b"Content-Length: 2", b"Content-Length: 2") + b"ab",
    "CL list": head(POST, HOST, b"Content-Length: 5, 5") + b"hello",
    "CL +5": head(POST, HOST, b"Content-Length: +5") + b"hello",
    "CL -5": head(POST, HOST, b"Content-Length: -5") + b"hello",
    "CL 0x5": head(POST, HOST, b"Content-Length: 0x5") + b"hello",
    "CL 5.0": head(POST, HOST, b"Content-Length: 5.0") + b"hello",
    "CL 5 5": head(POST, HOST, b"Content-Length: 5 5") + b"hello",
    "CL empty": head(POST, HOST, b"Content-Length: ") + b"hello",
    "CL overflow": head(POST, HOST, b"Content-Length: 99999999999999999999") + b"hello",
    "TE gzip, chunked": head(POST, HOST, b"Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n",
    "TE chunked, identity": head(POST, HOST, b"Transfer-Encoding: chunked, identity")
    + b"0\r\n\r\n",
    "TE identity": head(POST, HOST, b"Transfer-Encoding: identity") + b"hello",
    "TE repeated": head(POST, HOST, TE, TE) + b"0\r\n\r\n",
    "TE.TE xchunked": head(POST, HOST, TE, b"Transfer-Encoding: xchunked") + b"0\r\n\r\n",
    "TE xchunked": head(POST, HOST, b"Transfer-Encoding: xchunked") + b"0\r\n\r\n",
    "TE chunked;q": head(POST, HOST, b"Transfer-Encoding: chunked;q=1") + b"0\r\n\r\n",
    "TE space before colon": head(POST, HOST, b"Transfer-Encoding : chunked") + b"0\r\n\r\n",
    "TE vertical tab": head(POST, HOST, b"Transfer-Encoding:\x0bchunked") + b"0\r\n\r\n",
    "TE folded": head(POST, HOST, b"Transfer-Encoding:\r\n chunked") + b"0\r\n\r\n",
    "TE in HTTP/1.0": head(b"POST /public/x HTTP/1.0", HOST, TE) + b"0\r\n\r\n",
    # -- chunk sizes (the head and the bad chunk in one packet: the head must not go upstream)
    "chunk 0x5": head(POST, HOST, TE) + b"0x5\r\nhello\r\n0\r\n\r\n",
    "chunk -1": head(POST, HOST, TE) + b"-1\r\nhello\r\n0\r\n\r\n",
    "chunk overflow": head(POST, HOST, TE) + b"1" + b"0" * 20 + b"\r\nhello\r\n0\r\n\r\n",
    "chunk not hex": head(POST, HOST, TE) + b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk size space": head(POST, HOST, TE) + b"5 \r\nhello\r\n0\r\n\r\n",
    "chunk data too long": head(POST, HOST, TE) + b"5\r\nhelloXX\r\n0\r\n\r\n",
    "chunk bare LF": head(POST, HOST, TE) + b"5\nhello\n0\n\n",
    "chunk trailer CL": head(POST, HOST, TE) + b"0\r\nContent-Length: 5\r\n\r\n",
    "second chunk bad": head(POST, HOST, TE) + b"5\r\nhello\r\nzz\r\n",
    # -- header fields
    "obs-fold": head(b"GET /public/x HTTP/1.1", HOST, b"X-A: a", b" b"),
    "obs-fold tab": head(b"GET /public/x HTTP/1.1", HOST, b"X-A: a", b"\tb"),
    "NUL in value": head(b"GET /public/x HTTP/1.1", HOST, b"X-A: a\x00b"),
    "CR in value": head(b"GET /public/x HTTP/1.1", HOST, b"X-A: a\rb"),
    "LF in value": b"GET /public/x HTTP/1.1\r\nHost: x\r\nX-A: a\nX-Route: admin\r\n\r\n",
    "DEL in value": head(b"GET /public/x HTTP/1.1", HOST, b"X-A: a\x7fb"),
    "bare LF lines": b"GET /public/x HTTP/1.1\nHost: x\n\n",
    "bare LF one line": b"GET /public/x HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
    "bare CR": b"GET /public/x HTTP/1.1\rHost: x\r\n\r\n",
    "space before colon": head(b"GET /public/x HTTP/1.1", HOST, b"X-A : b"),
    "space in name": head(b"GET /public/x HTTP/1.1", HOST, b"X A: b"),
    "bad name char": head(b"GET /public/x HTTP/1.1", HOST, b"X(A): b"),
    "empty name": head(b"GET /public/x HTTP/1.1", HOST, b": b"),
    "no colon": head(b"GET /public/x HTTP/1.1", HOST, b"X-A b"),
    "leading space first field": head(b"GET /public/x HTTP/1.1", b" Host: x"),
    "two Host": head(b"GET /public/x HTTP/1.1", HOST, b"Host: y"),
    "no Host in HTTP/1.1": head(b"GET /public/x HTTP/1.1"),
    # -- request line
    "bad method char": head(b"G(T /public/x HTTP/1.1", HOST),
    "lower-case method": head(b"get /public/x HTTP/1.1", HOST),
    "HTTP/1.2": head(b"GET /public/x HTTP/1.2", HOST),
    "space in target": head(b"GET /public/a b HTTP/1.1", HOST),
    "NUL in target": head(b"GET /public/a\x00b HTTP/1.1", HOST),
    "CONNECT": head(b"CONNECT admin:443 HTTP/1.1", HOST),
    "not HTTP": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
    # -- paths (RFC 3986 dot-segments are resolved; their encoded forms are refused)
    "%2F": head(b"GET /public/..%2Fadmin/x HTTP/1.1", HOST),
    "%2f": head(b"GET /public/..%2fadmin/x HTTP/1.1", HOST),
    "%5C": head(b"GET /public/..%5Cadmin/x HTTP/1.1", HOST),
    "%5c": head(b"GET /public/..%5cadmin/x HTTP/1.1", HOST),
    "backslash": head(b"GET /public/..\\admin/x HTTP/1.1", HOST),
    "%2e%2e": head(b"GET /public/%2e%2e/admin/x HTTP/1.1", HOST),
    "%2E%2E": head(b"GET /public/%2E%2E/admin/x HTTP/1.1", HOST),
    ".%2e": head(b"GET /public/.%2e/admin/x HTTP/1.1", HOST),
    "%2E.": head(b"GET /public/%2E./admin/x HTTP/1.1", HOST),
    "%2e": head(b"GET /public/%2e/x HTTP/1.1", HOST),
    "..;": head(b"GET /public/..;/admin/x HTTP/1.1", HOST),
    "..;x=1": head(b"GET /public/..;x=1/admin/x HTTP/1.1", HOST),
    "relative target": head(b"GET admin/x HTTP/1.1", HOST),
}


@pytest.mark.parametrize("request_bytes", REFUSED.values(), ids=REFUSED.keys())
async def test_refused_with_400_closed_and_nothing_reaches_an_upstream(
    gw: GatewayProcess, ups: Upstreams, request_bytes: bytes
) -> None:
    response = await exchange_raw(gw.port, request_bytes, timeout=3)
    refused_and_closed(response)
    await settle()
    assert ups.untouched(), [(u.name, u.bytes_received, u.seen) for u in ups.all()]


async def test_an_http_2_request_line_is_505(gw: GatewayProcess, ups: Upstreams) -> None:
    response = await exchange_raw(gw.port, head(b"GET /public/x HTTP/2.0", HOST))
    refused_and_closed(response, 505)
    assert response.startswith(b"HTTP/1.1 505 ")  # answered in the version spoken here
    await settle()
    assert ups.untouched()


async def test_a_request_line_without_a_version_is_400(gw: GatewayProcess, ups: Upstreams) -> None:
    # Found by the fuzz test: "GET /" alone is read by llhttp as HTTP/0.9 (then 505).
    response = await exchange_raw(gw.port, b"GET /\r\n\r\na/b HTTP/1.1\r\nHost: x\r\n\r\n")
    refused_and_closed(response, 400)
    await settle()
    assert ups.untouched()


@pytest.mark.parametrize(
    "bad",
    [b"zz\r\nhello\r\n", b"-1\r\n", b"5\r\nhelloXX", b"0x5\r\nhello\r\n"],
    ids=["not hex", "negative", "data too long", "0x prefix"],
)
async def test_a_body_that_breaks_off_later_never_arrives_complete_and_its_connection_dies(
    gw: GatewayProcess, ups: Upstreams, bad: bytes
) -> None:
    """The head and a good chunk go upstream; the bad chunk arrives in a later packet. The
    upstream request must be cut off (never completed) on a connection never used again."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(head(POST, HOST, TE) + b"5\r\nhello\r\n")
        await writer.drain()
        await ups.public.wait_for(1)  # the head is upstream: the exchange is under way
        writer.write(bad)
        await writer.drain()
        async with asyncio.timeout(5):
            response = await reader.read()  # to the gateway's close
    finally:
        writer.close()
    refused_and_closed(response)
    cut = ups.public.seen[0]
    assert await ups.public.wait_ended(cut.connection) in ("eof", "reset")
    assert ups.public.completed == 0
    # The next request is served, on another connection.
    ok = await exchange_raw(gw.port, head(b"GET /public/next HTTP/1.1", HOST, b"Connection: close"))
    assert status_of(ok) == 200
    assert [(s.path, s.complete) for s in ups.public.seen] == [
        ("/public/x", False),
        ("/public/next", True),
    ]
    assert ups.public.seen[1].connection != cut.connection


async def test_a_bad_request_pipelined_behind_a_good_one_only_costs_itself(
    gw: GatewayProcess, ups: Upstreams
) -> None:
    """The first request is complete and valid, so it is served; the broken one behind it in
    the same packet never reaches the upstream."""
    good = head(b"GET /public/first HTTP/1.1", HOST)
    response = await exchange_raw(gw.port, good + head(POST, HOST, TE) + b"zz\r\n", timeout=3)
    assert status_of(response) == 200
    assert not response.endswith(b"<timeout>")
    await settle()
    assert [(s.path, s.complete) for s in ups.public.seen] == [("/public/first", True)]


ACCEPTED = {
    # RFC 9112 §7: transfer-coding names are case-insensitive, so this is plain chunked.
    "TE Chunked": head(POST, HOST, CLOSE, b"Transfer-Encoding: Chunked")
    + b"5\r\nhello\r\n0\r\n\r\n",
    # RFC 9112 §7.1.1: chunk extensions are allowed (and dropped: the body is re-chunked).
    "chunk extension": head(POST, HOST, CLOSE, TE) + b"5;name=value\r\nhello\r\n0\r\n\r\n",
    "chunk trailer": head(POST, HOST, CLOSE, TE) + b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
    # Optional whitespace around a field value is not part of it (RFC 9110 §5.5).
    "CL with OWS": head(POST, HOST, CLOSE, b"Content-Length: \t5 ") + b"hello",
    "HTTP/1.0 without Host": head(b"POST /public/x HTTP/1.0", b"Content-Length: 5") + b"hello",
}


@pytest.mark.parametrize("request_bytes", ACCEPTED.values(), ids=ACCEPTED.keys())
async def test_well_formed_but_unusual_requests_are_served(
    gw: GatewayProcess, ups: Upstreams, request_bytes: bytes
) -> None:
    response = await exchange_raw(gw.port, request_bytes)
    assert status_of(response) == 200, response[:300]
    assert not response.endswith(b"<timeout>")
    await settle()
    assert [(s.path, s.complete) for s in ups.public.seen] == [("/public/x", True)]
    (seen,) = ups.public.seen
    names = {name.lower() for name, _ in seen.headers}
    assert "x-sum" not in names  # a trailer never becomes a header upstream


# -- paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [b"/public/../admin/x", b"/public/./../admin/x", b"/public/a/../../admin/x", b"/../admin/x"],
)
async def test_a_dot_segment_traversal_lands_on_the_route_of_the_path_it_resolves_to(
    gw: GatewayProcess, ups: Upstreams, target: bytes
) -> None:
    """Dot-segments are resolved before routing: the request is one for /admin/x, so it goes
    through the admin route (and its filter), and the upstream sees exactly that path."""
    response = await exchange_raw(
        gw.port, head(b"GET " + target + b" HTTP/1.1", HOST, b"Connection: close")
    )
    assert status_of(response) == 200
    await settle()
    assert ups.public.nothing_received()
    ((path, headers),) = [(s.path, dict(s.headers)) for s in ups.admin.seen]
    assert path == "/admin/x"
    assert headers["X-Route"] == "admin"


async def test_an_admin_path_never_arrives_on_the_public_upstream(
    gw: GatewayProcess, gw_allow: GatewayProcess, ups: Upstreams
) -> None:
    """Every traversal trick, on both gateways: whatever the public upstream gets, a decoding
    and dot-segment-resolving reader of its path never finds /admin in it."""
    tricks = [
        b"/public/../admin/x",
        b"/public/%2e%2e/admin/x",
        b"/public/%2E%2E/admin/x",
        b"/public/.%2e/admin/x",
        b"/public/%2e./admin/x",
        b"/public/..;/admin/x",
        b"/public/%2e%2e;/admin/x",
        b"/public/..%2fadmin/x",
        b"/public/..%5cadmin/x",
        b"/public/..\\admin/x",
        b"/public/%252e%252e/admin/x",
    ]
    for port in (gw.port, gw_allow.port):
        for target in tricks:
            await exchange_raw(
                port, head(b"GET " + target + b" HTTP/1.1", HOST, b"Connection: close")
            )
    await settle()
    for seen in ups.admin.seen:
        assert dict(seen.headers)["X-Route"] == "admin"
    for seen in ups.public.seen:
        # What an upstream that decodes once (%2F and %5C too), takes a backslash for a slash,
        # drops ;parameters (as Tomcat does) and then resolves dot-segments reads.
        decoded = unquote(seen.path).replace("\\", "/").split("/")
        resolved = posixpath.normpath("/".join(seg.partition(";")[0] for seg in decoded))
        assert seen.path.startswith("/public/")
        assert not resolved.startswith("/admin"), seen.path


@pytest.mark.parametrize(
    ("target", "route", "forwarded"),
    [
        # An encoded dot-segment is resolved like a plain one (RFC 3986: %2E is ".").
        (b"/public/%2e%2e/admin/x", "admin", "/admin/x"),
        (b"/public/.%2E/admin/x", "admin", "/admin/x"),
        # %2F and %5C are data, not separators: the public route, the path as sent.
        (b"/public/a%2Fb", "public", "/public/a%2Fb"),
        (b"/public/a%5Cb", "public", "/public/a%5Cb"),
        (b"/public/x.%2fy", "public", "/public/x.%2fy"),
    ],
)
async def test_allow_encoded_slash_lets_them_through_with_one_reading(
    gw_allow: GatewayProcess, ups: Upstreams, target: bytes, route: str, forwarded: str
) -> None:
    response = await exchange_raw(
        gw_allow.port, head(b"GET " + target + b" HTTP/1.1", HOST, b"Connection: close")
    )
    assert status_of(response) == 200, response[:300]
    await settle()
    landed = ups.admin if route == "admin" else ups.public
    other = ups.public if route == "admin" else ups.admin
    assert [s.path for s in landed.seen] == [forwarded]
    assert other.nothing_received()


@pytest.mark.parametrize(
    "target",
    [
        b"/public/..%2fadmin/x",  # a dot-segment once %2F is decoded
        b"/public/x%5C..%5Cadmin",
        b"/public/.%2E%2Fadmin",
        b"/public/..;/admin/x",  # not an encoding at all
        b"/public/.;x/y",
        b"/public/a\\b",
    ],
)
async def test_allow_encoded_slash_still_refuses_what_is_not_an_encoding(
    gw_allow: GatewayProcess, ups: Upstreams, target: bytes
) -> None:
    response = await exchange_raw(gw_allow.port, head(b"GET " + target + b" HTTP/1.1", HOST))
    refused_and_closed(response)
    await settle()
    assert ups.untouched()


# -- limits ---------------------------------------------------------------------------------------


def _request_of_head_size(size: int) -> bytes:
    """A GET whose request line and fields (CRLFs included) are ``size`` bytes."""
    start = b"GET /public/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: "
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


async def test_a_head_within_16_kib_is_served(gw: GatewayProcess, ups: Upstreams) -> None:
    response = await exchange_raw(gw.port, _request_of_head_size(16 * 1024 - 64))
    assert status_of(response) == 200


@pytest.mark.parametrize("pieces", [1, 8], ids=["one packet", "eight packets"])
async def test_a_head_over_16_kib_is_431(gw: GatewayProcess, ups: Upstreams, pieces: int) -> None:
    data = _request_of_head_size(16 * 1024 + 64)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        step = len(data) // pieces + 1
        for i in range(0, len(data), step):
            writer.write(data[i : i + step])
            await writer.drain()
            await asyncio.sleep(0.01)
        async with asyncio.timeout(5):
            response = await reader.read()
    except ConnectionResetError:
        pytest.fail("the gateway reset the connection instead of answering 431")
    finally:
        writer.close()
    refused_and_closed(response, 431)
    await settle()
    assert ups.untouched()


async def test_a_hundred_header_fields_pass_and_one_more_is_431(
    gw: GatewayProcess, ups: Upstreams
) -> None:
    def fields(count: int) -> list[bytes]:  # Host and Connection are two of them
        return [HOST, b"Connection: close", *(b"X-F%d: v" % i for i in range(count - 2))]

    ok = await exchange_raw(gw.port, head(b"GET /public/x HTTP/1.1", *fields(100)))
    assert status_of(ok) == 200
    ups.reset()
    refused = await exchange_raw(gw.port, head(b"GET /public/x HTTP/1.1", *fields(101)))
    refused_and_closed(refused, 431)
    await settle()
    assert ups.untouched()


async def test_an_overlong_request_target_is_414(gw: GatewayProcess, ups: Upstreams) -> None:
    response = await exchange_raw(gw.port, head(b"GET /public/" + b"a" * 9000 + b" HTTP/1.1", HOST))
    refused_and_closed(response, 414)
    await settle()
    assert ups.untouched()


# -- slow clients ---------------------------------------------------------------------------------


async def _trickle(port: int, data: bytes, every: float) -> tuple[float, bytes]:
    """Send ``data`` a byte every ``every`` seconds until the gateway closes the connection;
    the seconds from the first byte to the close, and what the gateway answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    answer = b""
    try:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            try:
                piece = await asyncio.wait_for(reader.read(65536), every)
            except TimeoutError:
                continue
            answer = piece + await reader.read()  # the gateway answered (or closed): to EOF
            break
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.monotonic() - started, answer


async def test_slowloris_clients_are_cut_off_at_the_header_deadline_while_others_are_served(
    gw: GatewayProcess, ups: Upstreams
) -> None:
    """20 clients trickle a head a byte every 0.1 s (it would take ~6 s); one trickles empty
    lines. Each is closed about TIMEOUT after its first byte, not TIMEOUT after its last one,
    and a normal client is served quickly all along."""
    slow_head = head(b"GET /public/slow HTTP/1.1", HOST, b"X-Slow: " + b"s" * 20)
    slow = [asyncio.create_task(_trickle(gw.port, slow_head, 0.1)) for _ in range(20)]
    blank = asyncio.create_task(_trickle(gw.port, b"\r\n" * 40, 0.1))
    await asyncio.sleep(0.2)
    latencies = []
    while not all(task.done() for task in slow):
        started = time.monotonic()
        ok = await exchange_raw(
            gw.port, head(b"GET /public/fast HTTP/1.1", HOST, b"Connection: close")
        )
        latencies.append(time.monotonic() - started)
        assert status_of(ok) == 200
        await asyncio.sleep(0.1)
    results = [await task for task in slow]
    blank_took, blank_answer = await blank
    for took, answer in results:
        assert TIMEOUT * 0.9 <= took < TIMEOUT + 1.5, took
        assert status_of(answer) == 408
    assert TIMEOUT * 0.9 <= blank_took < TIMEOUT + 1.5, blank_took
    assert blank_answer == b""  # nothing was begun: just closed
    assert len(latencies) >= 3 and max(latencies) < 1.0, latencies
    await settle()
    assert {s.path for s in ups.public.seen} == {"/public/fast"}


async def test_half_a_head_sent_behind_a_request_does_not_hold_the_connection(
    gw: GatewayProcess, ups: Upstreams
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(head(b"GET /public/x HTTP/1.1", HOST) + b"GET /public/y HTTP/1.1\r\nHo")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        answered = time.monotonic()
        async with asyncio.timeout(TIMEOUT + 3):
            rest = await reader.read()
        held = time.monotonic() - answered
    finally:
        writer.close()
    assert b"HTTP/1.1 408 " in rest
    assert held < TIMEOUT + 1.5, held
    assert [s.path for s in ups.public.seen] == ["/public/x"]


async def test_an_idle_keep_alive_connection_is_closed(gw: GatewayProcess, ups: Upstreams) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(head(b"GET /public/x HTTP/1.1", HOST))
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        started = time.monotonic()
        async with asyncio.timeout(TIMEOUT + 3):
            while await reader.read(65536):
                pass
        idle = time.monotonic() - started
    finally:
        writer.close()
    assert TIMEOUT * 0.9 <= idle < TIMEOUT + 1.5, idle


# -- what responses give away -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"/dead/x", 502),  # connection refused
        (b"/nobody/x", 503),  # no instance of lb://nobody
        (b"/hung/x", 504),  # no answer within the route's response-timeout
        (b"/ws/x", 400),  # a request sent to a WebSocket URL without an upgrade
        (b"/nowhere", 404),
        (b"/public/%2e%2e/admin", 400),
    ],
)
async def test_error_responses_name_no_internal_address_version_or_stack(
    gw: GatewayProcess, ups: Upstreams, target: bytes, status: int
) -> None:
    response = await exchange_raw(
        gw.port, head(b"GET " + target + b" HTTP/1.1", HOST, b"Connection: close"), timeout=5
    )
    assert status_of(response) == status, response[:300]
    head_bytes, body = split(response)
    fields = json.loads(body)
    assert set(fields) == {"timestamp", "path", "status", "error", "message", "requestId"}
    # All of it but the two fields made of digits that could spell a port by chance.
    del fields["timestamp"], fields["requestId"]
    text = (head_bytes.decode("latin-1") + json.dumps(fields)).lower()
    for leak in (
        "127.0.0.1",
        str(ups.dead_port),
        str(ups.hung.port),
        "traceback",
        ".py",
        "meshgate",
        "python",
    ):
        assert leak not in text, (leak, response)
    assert b"\r\nserver:" not in head_bytes.lower()


async def test_a_proxied_response_gets_no_server_header_from_the_gateway(
    gw: GatewayProcess, ups: Upstreams
) -> None:
    response = await exchange_raw(
        gw.port, head(b"GET /public/x HTTP/1.1", HOST, b"Connection: close")
    )
    assert status_of(response) == 200
    assert b"\r\nserver:" not in split(response)[0].lower()


@pytest.mark.parametrize("path", [b"/actuator/health/liveness", b"/nowhere"])
async def test_the_management_port_names_no_version_either(gw: GatewayProcess, path: bytes) -> None:
    response = await exchange_raw(
        gw.management_port, head(b"GET " + path + b" HTTP/1.1", HOST, b"Connection: close")
    )
    servers = [
        line for line in split(response)[0].lower().split(b"\r\n") if line.startswith(b"server:")
    ]
    assert servers == [b"server: meshgate"], response[:300]
