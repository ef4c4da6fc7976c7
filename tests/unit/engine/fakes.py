"""Fakes of our own seams for driving the engine's protocols without sockets: a transport that
records what the protocol does to it (as uvicorn's protocol tests do), a body sink, and a
connection owner standing in for the pool."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.engine.upstream import UpstreamProtocol


class FakeTransport(asyncio.Transport):
    """Records writes, read pauses and closing; ``close`` tells the protocol soon after, as a
    real transport does."""

    def __init__(
        self,
        peer: tuple[str, int] = ("10.0.0.1", 40000),
        sock: tuple[str, int] = ("10.0.0.2", 8080),
    ) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.reading = True
        self.closed = False
        self.aborted = False
        self.eof_written = False
        self._extra = {"peername": peer, "sockname": sock}
        self._protocol: asyncio.BaseProtocol | None = None

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)

    def take(self) -> bytes:
        """What was written since the last ``take``."""
        data, self.writes = self.data, []
        return data

    # -- asyncio.Transport ------------------------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        return None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._lost_soon()

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def _lost_soon(self) -> None:
        protocol = self._protocol
        if protocol is not None:
            asyncio.get_running_loop().call_soon(protocol.connection_lost, None)


def connect(protocol: asyncio.Protocol, transport: FakeTransport | None = None) -> FakeTransport:
    transport = transport or FakeTransport()
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    return transport


async def settle(rounds: int = 5) -> None:
    """Let the loop run what the protocol scheduled (handler tasks, connection_lost)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Sink:
    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.ended = False
        self.error: BaseException | None = None

    def on_data(self, chunk: bytes) -> None:
        self.data.append(chunk)

    def on_end(self) -> None:
        self.ended = True

    def on_error(self, exc: BaseException) -> None:
        self.error = exc


class Owner:
    """Stands in for the pool: records what the connection tells it (``ConnectionOwner``)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.busy_now: set[UpstreamProtocol] = set()

    def busy(self, conn: UpstreamProtocol) -> None:
        self.events.append("busy")
        self.busy_now.add(conn)

    def idle(self, conn: UpstreamProtocol) -> None:
        self.events.append("idle")
        self.busy_now.discard(conn)

    def release(self, conn: UpstreamProtocol) -> None:
        self.events.append("release")

    def forget(self, conn: UpstreamProtocol) -> None:
        self.events.append("forget")
