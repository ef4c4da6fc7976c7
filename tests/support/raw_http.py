"""Raw HTTP/1.1 over a socket, for the cases a well-behaved client library refuses to send
(smuggling attempts, malformed heads, pipelining)."""

from __future__ import annotations

import asyncio


async def exchange_raw(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``data`` and read until the server closes (or ``timeout``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    piece = await reader.read(65536)
                    if not piece:
                        break
                    chunks.append(piece)
        except TimeoutError:
            chunks.append(b"<timeout>")
        return b"".join(chunks)
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])
