"""Back-pressure must not outlive the request that caused it: after a large upload or a large
download whose writer was paused, the same client connection (and the same pooled upstream
connection) must carry the next request."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.gateway import RunningGateway, start_gateway
from tests.support.upstream import Upstream, start_upstream


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, Upstream]]:
    upstream = await start_upstream("u")
    config = tmp_path / "routes.yml"
    config.write_text(
        textwrap.dedent(
            f"""
            routes:
              - id: all
                uri: {upstream.url}
            """
        )
    )
    gateway = await start_gateway(config)
    yield gateway, upstream
    await gateway.gateway.stop()
    await upstream.runner.cleanup()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    lines = head.decode("latin-1").lower().split("\r\n")
    length = next((int(x.split(":")[1]) for x in lines if x.startswith("content-length:")), None)
    if length is not None:
        return status, await reader.readexactly(length)
    body = b""
    while True:  # chunked
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        body += await reader.readexactly(size + 2)
        if size == 0:
            return status, body


async def test_large_uploads_on_one_keepalive_connection(
    proxied: tuple[RunningGateway, Upstream],
) -> None:
    gateway, _ = proxied
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        # Sizes around the gateway's body buffer (256 KiB, which pauses reading until the
        # upstream takes the body) and well above it, head and body in one write.
        for size in (300 * 1024, 256 * 1024, 2 * 1024 * 1024, 300 * 1024):
            head = b"POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size
            writer.write(head + b"u" * size)
            status, payload = await asyncio.wait_for(read_response(reader), 10)
            assert status == 200
            assert b'"received": %d' % size in payload
    finally:
        writer.close()


async def test_slowly_read_downloads_on_one_keepalive_connection(
    proxied: tuple[RunningGateway, Upstream],
) -> None:
    gateway, _ = proxied
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port, limit=2**16)
    try:
        for _ in range(4):
            writer.write(b"GET /bytes/4194304 HTTP/1.1\r\nHost: t\r\n\r\n")
            await asyncio.sleep(0.2)  # the gateway's writer fills and pauses the upstream
            status, payload = await asyncio.wait_for(read_response(reader), 10)
            assert status == 200
            assert len(payload) >= 4194304
    finally:
        writer.close()
