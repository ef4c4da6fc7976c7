"""Hostile and broken input at the front door: the right 4xx, never a crash, never a leak."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import MakeGateway
from tests.support.gateway import RunningGateway, spawn_gateway
from tests.support.raw_http import exchange_raw, status_of
from tests.support.upstream import Upstream


@pytest.fixture
async def gw(upstream: Upstream, make_gateway: MakeGateway) -> RunningGateway:
    return await make_gateway(
        f"""
        routes:
          - id: all
            uri: {upstream.url}
        """
    )


SMUGGLING = [
    # Content-Length together with Transfer-Encoding (CL.TE / TE.CL desync)
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n",
    # repeated Content-Length with different values
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    # malformed Content-Length
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    # Transfer-Encoding other than exactly chunked
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    # bad chunk size
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    # obs-fold
    b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    # NUL in a header value
    b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    # encoded slash, backslash and dot-segments in the path
    b"GET /a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a%5cb HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a/%2e%2e/b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n",
    # space in a header name
    b"GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n",
    # not HTTP at all
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
]


@pytest.mark.parametrize("request_bytes", SMUGGLING, ids=range(len(SMUGGLING)))
async def test_ambiguous_requests_are_refused_with_400_and_closed(
    gw: RunningGateway, request_bytes: bytes
) -> None:
    response = await exchange_raw(gw.port, request_bytes, timeout=3)
    assert status_of(response) == 400, response[:200]
    head, body = response.split(b"\r\n\r\n", 1)
    assert b"Connection: close" in head
    assert b'"status":400' in body
    assert b"<timeout>" not in response  # the gateway closed the connection itself


async def test_a_refused_path_is_named_in_the_error_body(gw: RunningGateway) -> None:
    response = await exchange_raw(gw.port, b"GET /a%2Fb?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(response) == 400
    body = json.loads(response.split(b"\r\n\r\n", 1)[1])
    assert body["path"] == "/a%2Fb"
    assert body["message"] == "encoded or backslash path separators are not allowed"


async def test_dot_segments_are_removed_before_routing(
    gw: RunningGateway, upstream: Upstream
) -> None:
    response = await exchange_raw(
        gw.port, b"GET /a/./b/../c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status_of(response) == 200
    assert b'"path": "/a/c"' in response


async def test_oversized_head_is_431(gw: RunningGateway) -> None:
    big = b"X-Big: " + b"a" * 40000 + b"\r\n"
    response = await exchange_raw(gw.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    assert status_of(response) == 431


async def test_too_many_headers_is_431(gw: RunningGateway) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    response = await exchange_raw(gw.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert status_of(response) == 431


async def test_overlong_target_is_414(gw: RunningGateway) -> None:
    response = await exchange_raw(
        gw.port, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert status_of(response) == 414


async def test_slow_head_is_408(upstream: Upstream, make_gateway: MakeGateway) -> None:
    gw = await make_gateway(f"routes: [{{id: all, uri: '{upstream.url}'}}]", header_timeout=0.3)
    response = await exchange_raw(gw.port, b"GET / HTTP/1.1\r\nHost: x\r\n", timeout=3)
    assert status_of(response) == 408


async def test_idle_keepalive_connection_is_closed(
    upstream: Upstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(f"routes: [{{id: all, uri: '{upstream.url}'}}]", keepalive_timeout=0.3)
    response = await exchange_raw(gw.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
    assert status_of(response) == 200
    assert b"<timeout>" not in response  # closed by the gateway after 0.3 s idle


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.lists(
            st.sampled_from(
                [
                    b"GET ",
                    b"POST ",
                    b"/",
                    b"/a?b=c",
                    b" HTTP/1.1\r\n",
                    b" HTTP/1.0\r\n",
                    b"Host: x\r\n",
                    b"Content-Length: 3\r\n",
                    b"Content-Length: -1\r\n",
                    b"Transfer-Encoding: chunked\r\n",
                    b"Connection: close\r\n",
                    b"Upgrade: websocket\r\nConnection: Upgrade\r\n",
                    b"Expect: 100-continue\r\n",
                    b"\r\n",
                    b"abc",
                    b"3\r\nabc\r\n",
                    b"0\r\n\r\n",
                    b"\x00",
                    b"%2e%2e/",
                ]
            ),
            max_size=14,
        ).map(b"".join),
    )
)
async def test_arbitrary_input_never_breaks_the_gateway(gw: RunningGateway, data: bytes) -> None:
    response = await exchange_raw(gw.port, data, timeout=0.5)
    if response and response != b"<timeout>":
        assert response.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), response[:80]
        assert 100 <= status_of(response) < 600
    # Whatever that did, the next well-formed request on a new connection is served.
    ok = await exchange_raw(gw.port, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(ok) == 200


@pytest.mark.slow
async def test_bad_requests_do_not_leak_memory(tmp_path: Path, upstream: Upstream) -> None:
    config = tmp_path / "routes.yml"
    config.write_text(f"routes: [{{id: all, uri: '{upstream.url}'}}]\n")
    process = spawn_gateway(config, tmp_path)
    try:

        async def round_of_abuse() -> None:
            for payload in SMUGGLING:
                await exchange_raw(process.port, payload, timeout=2)
            # a client that vanishes mid-body, and one that vanishes mid-response
            reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
            writer.write(b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
            await writer.drain()
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
            writer.write(b"GET /bytes/5000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            await reader.read(1000)
            writer.close()

        for _ in range(5):  # warm up allocator pools and caches
            await round_of_abuse()
        await asyncio.sleep(0.3)
        before = process.rss_bytes()
        for _ in range(60):
            await round_of_abuse()
        await asyncio.sleep(0.5)
        growth = process.rss_bytes() - before
        assert growth < 8 * 1024 * 1024, f"RSS grew by {growth / 1024 / 1024:.1f} MiB"
    finally:
        assert process.stop() == 0
