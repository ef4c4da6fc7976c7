"""The data plane end to end: real client → gateway → real upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp

from tests.conftest import MakeGateway
from tests.support.raw_http import exchange_raw, status_of
from tests.support.upstream import Upstream


def routes_to(upstream: Upstream, extra: str = "") -> str:
    return f"""
    routes:
      - id: echo
        uri: {upstream.url}
        predicates:
          - Path=/echo/**
{extra}
    """


async def test_get_is_proxied_with_query_and_headers(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes_to(upstream))
    async with session.get(f"{gw.url}/echo/a?x=1&y=%20", headers={"X-Test": "yes"}) as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["path"] == "/echo/a"
    assert data["raw_path"] == "/echo/a?x=1&y=%20"
    headers = dict(data["headers"])
    assert headers["X-Test"] == "yes"
    assert headers["Host"] == f"127.0.0.1:{upstream.port}"
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Host"] == f"127.0.0.1:{gw.port}"


async def test_post_body_with_content_length(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes_to(upstream))
    async with session.post(f"{gw.url}/echo/post", data=b"hello world") as resp:
        data = await resp.json()
    assert data["body"] == "hello world"
    assert dict(data["headers"])["Content-Length"] == "11"


async def test_chunked_request_body_is_rechunked(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes_to(upstream))

    async def body() -> AsyncIterator[bytes]:
        for i in range(50):
            yield f"part{i};".encode()

    async with session.post(f"{gw.url}/echo/chunked", data=body()) as resp:
        data = await resp.json()
    expected = "".join(f"part{i};" for i in range(50))
    assert data["body"] == expected
    headers = dict(data["headers"])
    assert headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in headers


async def test_streamed_response_without_length_is_chunked_to_client(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes_to(upstream).replace("/echo/**", "/bytes/**"))
    async with session.get(f"{gw.url}/bytes/300000") as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        assert len(await resp.read()) == 300000


async def test_keep_alive_connection_is_reused(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes_to(upstream))
    for _ in range(5):
        async with session.get(f"{gw.url}/echo/k") as resp:
            assert resp.status == 200
            await resp.read()
    # One pooled upstream connection served all five requests.
    assert gw.gateway.pool.idle_count() == 1


async def test_no_route_is_404_json(
    make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway("routes: []")
    async with session.get(f"{gw.url}/nowhere") as resp:
        assert resp.status == 404
        data = await resp.json()
    assert data["status"] == 404
    assert data["path"] == "/nowhere"
    assert data["error"] == "Not Found"
    assert data["requestId"]
    assert data["timestamp"]


async def test_connect_failure_is_502(
    make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    from tests.support.ports import free_port

    dead = free_port()
    gw = await make_gateway(
        f"""
        routes:
          - id: dead
            uri: http://127.0.0.1:{dead}
        """
    )
    async with session.get(f"{gw.url}/x") as resp:
        assert resp.status == 502
        data = await resp.json()
    assert data["error"] == "Bad Gateway"


async def test_service_without_instances_is_503(
    make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        """
        routes:
          - id: svc
            uri: lb://nobody
        """
    )
    async with session.get(f"{gw.url}/x") as resp:
        assert resp.status == 503
        assert (await resp.json())["error"] == "Service Unavailable"


async def test_upstream_timeout_is_504(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: slow
            uri: {upstream.url}
            metadata:
              response-timeout: 200
        """
    )
    async with session.get(f"{gw.url}/delay/2") as resp:
        assert resp.status == 504
        assert (await resp.json())["error"] == "Gateway Timeout"


async def test_response_timeout_minus_one_turns_the_timeout_off_for_the_route(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    """SCG's ``response-timeout: -1``: no response timeout on that route, even though the
    gateway's own default (0.3 s here) would have answered 504."""
    gw = await make_gateway(
        f"""
        routes:
          - id: patient
            uri: {upstream.url}
            predicates: [Path=/delay/**]
            metadata:
              response-timeout: -1
          - id: default
            uri: {upstream.url}
            predicates: [Path=/slow/**]
            filters: [StripPrefix=1]
        """,
        response_timeout=0.3,
    )
    async with session.get(f"{gw.url}/delay/1") as resp:
        assert resp.status == 200
    async with session.get(f"{gw.url}/slow/delay/1") as resp:  # the same call, the default
        assert resp.status == 504


async def test_a_slow_upload_is_not_a_response_timeout(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    """The response timeout counts silence: an upload longer than it, still being read,
    is fine; only the wait after the last byte (or between bytes) is bounded."""
    gw = await make_gateway(
        f"""
        routes:
          - id: slow-upload
            uri: {upstream.url}
            metadata:
              response-timeout: 300
        """
    )

    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(8):  # ~0.8 s in all, far over the 300 ms timeout
            yield b"x" * 1000
            await asyncio.sleep(0.1)

    async with session.post(f"{gw.url}/sink", data=trickle()) as resp:
        assert resp.status == 200
        assert (await resp.json())["received"] == 8000


async def test_lb_round_robin_over_static_services(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        services:
          echo:
            - {{host: 127.0.0.1, port: {upstream.port}}}
            - {{host: 127.0.0.1, port: {upstream_b.port}}}
        routes:
          - id: svc
            uri: lb://echo
        """
    )
    seen = []
    for _ in range(6):
        async with session.get(f"{gw.url}/x") as resp:
            seen.append((await resp.json())["upstream"])
    assert sorted(seen) == ["a", "a", "a", "b", "b", "b"]
    assert all(seen[i] != seen[i + 1] for i in range(5))


async def test_lb_service_ids_compare_case_insensitively(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    # lb://Orders-Svc once answered 503: the route lower-cased the id, the registry did not.
    gw = await make_gateway(
        f"""
        services:
          Orders-Svc:
            instances:
              - {{host: 127.0.0.1, port: {upstream.port}}}
            max-concurrent: 10
          users:
            - {{host: 127.0.0.1, port: {upstream_b.port}}}
        routes:
          - id: orders
            uri: lb://Orders-Svc
            predicates: [Path=/orders/**]
          - id: users
            uri: lb://USERS
            predicates: [Path=/users/**]
        """
    )
    async with session.get(f"{gw.url}/orders/1") as resp:
        assert resp.status == 200
        assert (await resp.json())["upstream"] == "a"
    async with session.get(f"{gw.url}/users/1") as resp:
        assert resp.status == 200
        assert (await resp.json())["upstream"] == "b"
    async with session.get(f"{gw.management_url}/actuator/gateway/routes/orders") as resp:
        assert (await resp.json())["uri"] == "lb://Orders-Svc"


async def test_hop_by_hop_headers_are_not_forwarded(
    upstream: Upstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(routes_to(upstream))
    request = (
        b"GET /echo/h HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\n"
        b"X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: x\r\n"
        b"Proxy-Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\n\r\n"
    )
    response = await exchange_raw(gw.port, request)
    assert status_of(response) == 200
    body = response.split(b"\r\n\r\n", 1)[1]
    names = {h[0].lower() for h in json.loads(body)["headers"]}
    for hop in ("x-secret", "keep-alive", "te", "proxy-authorization", "proxy-connection"):
        assert hop not in names
    assert "upgrade-insecure-requests" in names  # an end-to-end header that only looks similar
    assert names & {"connection"} <= {"connection"}


async def test_pipelined_requests_are_answered_in_order(
    upstream: Upstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(routes_to(upstream))
    last = "Connection: close"
    request = b"".join(
        f"GET /echo/{i} HTTP/1.1\r\nHost: x\r\n{last if i == 4 else 'X-N: 1'}\r\n\r\n".encode()
        for i in range(5)
    )
    response = await exchange_raw(gw.port, request)
    assert response.count(b"HTTP/1.1 200 OK") == 5
    positions = [response.index(f'"path": "/echo/{i}"'.encode()) for i in range(5)]
    assert positions == sorted(positions)


async def test_http10_client_gets_close_delimited_stream(
    upstream: Upstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(routes_to(upstream).replace("/echo/**", "/bytes/**"))
    response = await exchange_raw(gw.port, b"GET /bytes/100000 HTTP/1.0\r\n\r\n")
    head, body = response.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.0 200")
    assert b"chunked" not in head.lower()
    assert len(body) == 100000


async def test_head_request_has_no_body_and_connection_stays_usable(
    upstream: Upstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(routes_to(upstream))
    request = (
        b"HEAD /echo/1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /echo/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    response = await exchange_raw(gw.port, request)
    assert response.count(b"HTTP/1.1 200 OK") == 2
    assert b'"path": "/echo/2"' in response
    assert b'"path": "/echo/1"' not in response


async def test_expect_continue_is_answered_by_the_gateway(
    upstream: Upstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(routes_to(upstream))
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(
        b"POST /echo/c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
        b"Connection: close\r\n\r\n"
    )
    await writer.drain()
    interim = await reader.readuntil(b"\r\n\r\n")
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    writer.write(b"hello")
    rest = await reader.read()
    writer.close()
    assert b"HTTP/1.1 200 OK" in rest
    assert b'"body": "hello"' in rest
    assert b"Expect" not in rest.split(b"\r\n\r\n", 1)[1]


async def test_pipelined_request_with_a_late_body_is_not_starved(
    upstream: Upstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(f"routes: [{{id: all, uri: '{upstream.url}'}}]")
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(
        b"GET /delay/0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nab"
    )
    await writer.drain()
    await asyncio.sleep(0.5)  # the first response is done before the rest of the second body
    writer.write(b"cde")
    await writer.drain()
    async with asyncio.timeout(5):
        response = await reader.read(-1)
    writer.close()
    assert response.count(b"HTTP/1.1 200 OK") == 2
    assert b'"body": "abcde"' in response


async def test_idle_pooled_connections_are_closed_after_the_idle_timeout(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes_to(upstream), upstream_idle_timeout=0.2)
    async with session.get(f"{gw.url}/echo/1") as resp:
        await resp.read()
    assert gw.gateway.pool.idle_count() == 1
    await asyncio.sleep(0.6)
    assert gw.gateway.pool.idle_count() == 0
