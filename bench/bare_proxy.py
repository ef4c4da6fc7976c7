"""The floor: a bare HTTP/1.1 pass-through on the same ingredients as meshgate's engine
(uvloop, asyncio Protocols, httptools) with no gateway work at all: no routing, no header
policy, no timeouts, one upstream connection pinned per client connection, no pipelining.
It answers "how cheap can a Python proxy on this stack be on this machine", so the gap
between it and meshgate is the price of meshgate's features and safety.
Usage: python -m bench.bare_proxy PORT UPSTREAM_PORT"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import httptools
import uvloop

HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade"})


class Upstream(asyncio.Protocol):
    def __init__(self, client: Client) -> None:
        self.client = client
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[bytes] = []
        self.chunked = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's isn't a subclass

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.headers = []
        self.chunked = False

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"transfer-encoding":
            self.chunked = True
        elif lower not in HOP:
            self.headers.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        framing = b"transfer-encoding: chunked\r\n" if self.chunked else b""
        head = b"HTTP/1.1 %d OK\r\n" % status + b"".join(self.headers) + framing + b"\r\n"
        self.client.transport.write(head)

    def on_body(self, body: bytes) -> None:
        if self.chunked:
            self.client.transport.write(b"%x\r\n%b\r\n" % (len(body), body))
        else:
            self.client.transport.write(body)

    def on_message_complete(self) -> None:
        if self.chunked:
            self.client.transport.write(b"0\r\n\r\n")


class Client(asyncio.Protocol):
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.parser = httptools.HttpRequestParser(self)
        self.upstream: Upstream | None = None
        self.pending: list[bytes] = []
        self.url = b""
        self.headers: list[bytes] = []
        self.chunked = False
        self.transport: asyncio.Transport
        self.connecting: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's isn't a subclass
        loop = asyncio.get_running_loop()
        self.connecting = loop.create_task(self._connect(loop))

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        _, protocol = await loop.create_connection(
            lambda: Upstream(self), "127.0.0.1", self.upstream_port
        )
        self.upstream = protocol
        if self.pending:
            self._send(b"".join(self.pending))
            self.pending.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()

    def _send(self, data: bytes) -> None:
        if self.upstream is None or self.upstream.transport is None:
            self.pending.append(data)
        else:
            self.upstream.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.chunked = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"transfer-encoding":
            self.chunked = True
        elif lower not in HOP:
            self.headers.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        method = self.parser.get_method()
        framing = b"transfer-encoding: chunked\r\n" if self.chunked else b""
        line = method + b" " + self.url + b" HTTP/1.1\r\n"
        self._send(line + b"".join(self.headers) + framing + b"\r\n")

    def on_body(self, body: bytes) -> None:
        self._send(b"%x\r\n%b\r\n" % (len(body), body) if self.chunked else body)

    def on_message_complete(self) -> None:
        if self.chunked:
            self._send(b"0\r\n\r\n")


async def main(port: int, upstream_port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Client(upstream_port), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), int(sys.argv[2])))
