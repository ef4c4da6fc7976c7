"""Upstreams that misbehave or use the less common parts of HTTP/1.1, served by raw asyncio
servers so the test controls every byte."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from tests.conftest import MakeGateway

Responder = Callable[[bytes], bytes | None]


class RawUpstream:
    """Answers each request head with the bytes ``respond`` returns (None: close instead)."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.requests: list[bytes] = []
        self.connections = 0
        self.close_after_answer = False
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                answer = self.respond(head)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def raw_upstream() -> AsyncIterator[Callable[[Responder], asyncio.Future[RawUpstream]]]:
    servers: list[RawUpstream] = []

    async def start(respond: Responder) -> RawUpstream:
        upstream = RawUpstream(respond)
        upstream.server = await asyncio.start_server(upstream._serve, "127.0.0.1", 0)
        servers.append(upstream)
        return upstream

    yield start  # type: ignore[misc]
    for upstream in servers:
        assert upstream.server is not None
        upstream.server.close()


def route_to(port: int) -> str:
    return f"routes: [{{id: raw, uri: 'http://127.0.0.1:{port}'}}]"


async def test_hop_by_hop_response_headers_are_not_returned(
    raw_upstream: Callable[[Responder], asyncio.Future[RawUpstream]],
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    up = await raw_upstream(
        lambda head: (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\n"
            b"X-Hop: secret\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\n"
            b"Trailer: X-T\r\nX-End-To-End: kept\r\n\r\nok"
        )
    )
    gw = await make_gateway(route_to(up.port))
    async with session.get(f"{gw.url}/x") as resp:
        assert await resp.read() == b"ok"
        names = {name.lower() for name in resp.headers}
    assert "x-end-to-end" in names
    for hop in ("x-hop", "keep-alive", "proxy-authenticate", "trailer"):
        assert hop not in names


async def test_interim_100_and_103_responses_are_skipped(
    raw_upstream: Callable[[Responder], asyncio.Future[RawUpstream]],
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    up = await raw_upstream(
        lambda head: (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone"
        )
    )
    gw = await make_gateway(route_to(up.port))
    async with session.get(f"{gw.url}/x") as resp:
        assert resp.status == 201
        assert await resp.read() == b"done"


async def test_close_delimited_response_is_passed_on(
    raw_upstream: Callable[[Responder], asyncio.Future[RawUpstream]],
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    up = await raw_upstream(lambda head: b"HTTP/1.1 200 OK\r\n\r\n" + b"z" * 70000)
    up.close_after_answer = True
    gw = await make_gateway(route_to(up.port))
    async with session.get(f"{gw.url}/x") as resp:
        body = await resp.read()
    # The body ended when the upstream closed; the gateway re-framed it as chunked.
    assert len(body) == 70000
    assert resp.headers.get("Transfer-Encoding") == "chunked"


async def test_stale_pooled_connection_is_retried_once_for_bodyless_requests(
    raw_upstream: Callable[[Responder], asyncio.Future[RawUpstream]],
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    answered = 0

    def respond(head: bytes) -> bytes | None:
        # Answer the first request on each connection, then close it without a word the next
        # time (a keep-alive connection the upstream dropped just as we reused it).
        nonlocal answered
        answered += 1
        if answered % 2 == 0:
            return None
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    up = await raw_upstream(respond)
    gw = await make_gateway(route_to(up.port))
    for _ in range(3):
        async with session.get(f"{gw.url}/x") as resp:
            assert resp.status == 200
    assert up.connections >= 2


async def test_garbage_from_upstream_is_502(
    raw_upstream: Callable[[Responder], asyncio.Future[RawUpstream]],
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    up = await raw_upstream(lambda head: b"SSH-2.0-OpenSSH\r\n\r\n")
    gw = await make_gateway(route_to(up.port))
    async with session.get(f"{gw.url}/x") as resp:
        assert resp.status == 502


async def test_upstream_closing_mid_body_cuts_the_client_connection(
    raw_upstream: Callable[[Responder], asyncio.Future[RawUpstream]],
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    up = await raw_upstream(
        lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000
    )
    up.close_after_answer = True
    gw = await make_gateway(route_to(up.port))
    with pytest.raises(aiohttp.ClientPayloadError):
        async with session.get(f"{gw.url}/x") as resp:
            await resp.read()


async def test_early_answer_reads_the_rest_of_the_body_and_keeps_the_connection(
    raw_upstream: Callable[[Responder], asyncio.Future[RawUpstream]],
    make_gateway: MakeGateway,
) -> None:
    # The upstream answers as soon as it has the head, without reading the upload.
    up = await raw_upstream(lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    up.close_after_answer = True
    gw = await make_gateway(route_to(up.port))
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    body = b"b" * (1024 * 1024)
    writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
    writer.write(body[:1000])
    await writer.drain()
    first = await reader.readuntil(b"ok")
    assert first.startswith(b"HTTP/1.1 200 OK")
    writer.write(body[1000:])  # the client keeps sending after the answer: no reset
    writer.write(b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(5):
        rest = await reader.read(-1)
    writer.close()
    assert rest.startswith(b"HTTP/1.1 200 OK")  # the same connection served the next request
