"""Whole bodies in memory, for the few filters that must see all of one (CacheRequestBody,
RemoveJsonAttributesResponseBody): read a streamed body to its end within a byte limit, and a
body source over bytes that can be sent again.

Everything else streams; only routes that list one of these filters pay for a whole body.
"""

from __future__ import annotations

import asyncio

from gateway.engine.replay import KeptBody
from gateway.exchange import BodySource


class BodyTooLarge(Exception):
    """The body went past the limit before it ended."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body is larger than {limit} bytes")
        self.limit = limit


class BodyFailed(Exception):
    """The body broke off (the peer reset, a bad chunk); the cause is chained."""


class _Collector:
    """The sink that keeps a body, up to ``limit`` bytes; past it, what still arrives is
    dropped (the engine reads and drops the rest of a request answered early)."""

    __slots__ = ("_limit", "chunks", "done", "size")

    def __init__(self, limit: int, done: asyncio.Future[None]) -> None:
        self._limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = done

    def on_data(self, chunk: bytes) -> None:
        if self.done.done():
            return
        self.size += len(chunk)
        if self.size > self._limit:
            self.chunks.clear()
            self.done.set_exception(BodyTooLarge(self._limit))
            return
        self.chunks.append(chunk)

    def on_end(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def on_error(self, exc: BaseException) -> None:
        if not self.done.done():
            failure = BodyFailed(str(exc) or type(exc).__name__)
            failure.__cause__ = exc
            self.done.set_exception(failure)


async def read_body(source: BodySource, limit: int) -> bytes:
    """All of ``source``, or ``BodyTooLarge`` as soon as it passes ``limit`` bytes (at once
    when its declared length does), or ``BodyFailed``. Starts the source: nothing else may
    read it after this."""
    if source.length is not None and source.length > limit:
        raise BodyTooLarge(limit)
    collector = _Collector(limit, asyncio.get_running_loop().create_future())
    source.start(collector)
    await collector.done
    return b"".join(collector.chunks)


class BufferedBody(KeptBody):
    """A body already in memory, sent in one piece. It is replayable: ``replay()`` gives a
    fresh copy for another attempt (a retry, a fallback). ``length`` None keeps the framing
    the client chose (chunked), as SCG does when it forwards a cached body."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes, length: int | None) -> None:
        super().__init__([data] if data else [], length)
        self._data = data

    @property
    def data(self) -> bytes:
        return self._data

    # -- ReplayableSource ---------------------------------------------------------------------
    @property
    def replayable(self) -> bool:
        return True

    def replay(self) -> BufferedBody:
        return BufferedBody(self._data, self._length)
