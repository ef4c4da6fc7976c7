"""Byte splicing after a successful protocol switch (WebSocket): once the upstream answers 101,
neither side is HTTP any more and the gateway copies bytes both ways with back-pressure."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.exchange import BodySink


class Tunnel:
    """Joins a client transport and an upstream transport. Also serves as the 101 response's
    body object, so the server knows to splice instead of writing a body."""

    __slots__ = ("_client", "_closed", "_done_cb", "_pending", "_upstream")

    def __init__(self, upstream: asyncio.Transport, early_upstream_bytes: bytes) -> None:
        self._upstream = upstream
        self._client: asyncio.Transport | None = None
        self._pending = [early_upstream_bytes] if early_upstream_bytes else []
        self._closed = False
        self._done_cb: Callable[[], None] | None = None

    # BodySource surface (a tunnel is never read as a body)
    @property
    def length(self) -> int | None:
        return None

    def start(self, sink: BodySink) -> None:
        raise RuntimeError("a tunnel is spliced, not read")

    def pause(self) -> None:
        self._upstream.pause_reading()

    def resume(self) -> None:
        self._upstream.resume_reading()

    def abort(self) -> None:
        self._close_both()

    def when_done(self, callback: Callable[[], None]) -> None:
        # A tunnel is over when it closes: what the 101 holds (a bulkhead slot) is held by
        # the spliced connection until then.
        if self._closed:
            callback()
        else:
            self._done_cb = callback

    # wiring
    def attach_client(self, client: asyncio.Transport, early_client_bytes: bytes) -> None:
        self._client = client
        if early_client_bytes:
            self._upstream.write(early_client_bytes)
        for piece in self._pending:
            client.write(piece)
        self._pending.clear()
        self._upstream.resume_reading()

    def from_client(self, data: bytes) -> None:
        if not self._upstream.is_closing():
            self._upstream.write(data)

    def from_upstream(self, data: bytes) -> None:
        client = self._client
        if client is None:
            self._pending.append(data)
        elif not client.is_closing():
            client.write(data)

    def client_eof(self) -> bool:
        if self._upstream.can_write_eof() and not self._upstream.is_closing():
            self._upstream.write_eof()
            return True
        self._close_both()
        return False

    def upstream_eof(self) -> bool:
        client = self._client
        if client is not None and client.can_write_eof() and not client.is_closing():
            client.write_eof()
            return True
        self._close_both()
        return False

    def client_lost(self) -> None:
        self._close_both()

    def upstream_lost(self) -> None:
        self._close_both()

    # back-pressure: a full writer on one side stops reading on the other
    def client_write_paused(self) -> None:
        self._upstream.pause_reading()

    def client_write_resumed(self) -> None:
        self._upstream.resume_reading()

    def upstream_write_paused(self) -> None:
        if self._client is not None:
            self._client.pause_reading()

    def upstream_write_resumed(self) -> None:
        if self._client is not None:
            self._client.resume_reading()

    def _close_both(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._upstream.close()
        if self._client is not None:
            self._client.close()
        callback, self._done_cb = self._done_cb, None
        if callback is not None:
            callback()
