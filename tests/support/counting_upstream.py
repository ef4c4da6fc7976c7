"""An upstream that counts what reaches it: connections, raw bytes, request heads and complete
requests, and how each connection ended. The hardening tests use it to prove that nothing of a
refused request got through — not a byte, not a connection — and that a request broken off
mid-body never arrived complete.

Every complete request is answered ``200`` with a small JSON body naming the upstream, the path
and the headers it saw, so a test can also tell *which* upstream a request landed on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools


@dataclass
class Seen:
    """One request head as the upstream parsed it."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    connection: int  # the serial number of the connection it came on
    complete: bool = False  # its body (if any) arrived to the end


@dataclass
class CountingUpstream:
    name: str
    answer: bool = True  # False: requests are read and never answered (a hung upstream)
    server: asyncio.Server | None = None
    port: int = 0
    connections: int = 0  # accepted since the last reset
    accepted: int = 0  # accepted ever: the next connection's serial number
    open_connections: int = 0
    bytes_received: int = 0  # since the last reset, on any connection
    # How each connection ended, by serial number: "eof" (the peer's FIN), "reset" (its RST)
    # or "error" (it sent what is not HTTP).
    endings: dict[int, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)  # since the last reset
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set at every event

    @property
    def heads(self) -> int:
        return len(self.seen)

    @property
    def completed(self) -> int:
        return sum(1 for request in self.seen if request.complete)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def nothing_received(self) -> bool:
        return self.connections == 0 and self.bytes_received == 0

    def reset(self) -> None:
        self.connections = 0
        self.bytes_received = 0
        self.seen.clear()

    async def start(self) -> CountingUpstream:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def wait_for(self, heads: int, timeout: float = 3.0) -> None:
        """Until ``heads`` request heads have arrived since the last reset."""
        await self._until(lambda: self.heads >= heads, timeout)

    async def wait_ended(self, connection: int, timeout: float = 3.0) -> str:
        """Until connection number ``connection`` has ended; how it ended."""
        await self._until(lambda: connection in self.endings, timeout)
        return self.endings[connection]

    async def _until(self, ready: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not ready():
                self.changed.clear()
                await self.changed.wait()


class _Connection(asyncio.Protocol):
    def __init__(self, owner: CountingUpstream) -> None:
        self._owner = owner
        self._index = owner.accepted
        owner.accepted += 1
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._current: Seen | None = None
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._broken = False

    # asyncio side ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._owner.connections += 1
        self._owner.open_connections += 1

    def data_received(self, data: bytes) -> None:
        self._owner.bytes_received += len(data)
        if self._broken:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._broken = True  # counted as bytes; nothing more is parsed

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.open_connections -= 1
        if exc is None:
            ending = "error" if self._broken else "eof"
        else:
            ending = "reset" if isinstance(exc, ConnectionResetError) else "error"
        self._owner.endings[self._index] = ending
        self._owner.changed.set()

    # parser side ----------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        method = self._parser.get_method().decode("latin-1")
        self._current = Seen(method, self._url.decode("latin-1"), self._headers, self._index)
        self._owner.seen.append(self._current)
        self._owner.changed.set()

    def on_message_complete(self) -> None:
        current = self._current
        if current is None or self._transport is None:
            return
        current.complete = True
        if not self._owner.answer:
            return
        body = json.dumps(
            {"upstream": self._owner.name, "path": current.path, "headers": current.headers}
        ).encode()
        self._transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Upstream: %b\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (self._owner.name.encode(), len(body), body)
        )
