"""WebSocket upgrade through the gateway: the 101 is relayed and bytes are spliced both ways."""

from __future__ import annotations

import aiohttp

from tests.conftest import MakeGateway
from tests.support.raw_http import exchange_raw, status_of
from tests.support.upstream import Upstream


async def test_websocket_echo_through_ws_uri(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: ws
            uri: ws://127.0.0.1:{upstream.port}
            predicates:
              - Path=/ws/**
        """
    )
    async with session.ws_connect(f"{gw.url}/ws/chat") as ws:
        for i in range(20):
            await ws.send_str(f"hello {i}")
            assert await ws.receive_str() == f"a: hello {i}"
        payload = bytes(range(256)) * 1000
        await ws.send_bytes(payload)
        assert await ws.receive_bytes() == payload


async def test_websocket_through_lb_ws(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        services:
          chat:
            - {{host: 127.0.0.1, port: {upstream.port}}}
        routes:
          - id: ws
            uri: lb:ws://chat
            predicates:
              - Path=/ws/**
        """
    )
    async with session.ws_connect(f"{gw.url}/ws/x") as ws:
        await ws.send_str("ping")
        assert await ws.receive_str() == "a: ping"
        await ws.close()
    # The gateway keeps serving ordinary requests afterwards.
    async with session.get(f"{gw.url}/ws/plain") as resp:
        assert resp.status == 200


async def test_refused_upgrade_returns_upstream_answer_and_closes(
    upstream: Upstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: ws
            uri: http://127.0.0.1:{upstream.port}
        """
    )
    # Upgrade to a protocol the upstream doesn't speak: it answers an ordinary 200 (echo), and
    # the gateway must not treat the connection as spliced.
    response = await exchange_raw(
        gw.port,
        b"GET /status/426 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c-fake\r\n\r\n",
    )
    assert status_of(response) == 426
    assert b"Connection: close" in response
