"""Bodies kept while they stream: the client's request body on its way to the primary (the
copy the shadow gets) and the primary's response body on its way to the client (what the
shadow's answer is compared with).

A tee passes every chunk straight on and keeps a copy up to ``limit`` bytes; past the limit it
forgets what it kept and keeps nothing more, so memory stays bounded and a truncated body can
never be mistaken for a whole one. It never pauses the stream for its own sake: whoever reads
the copy reads it once the stream is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import Enum

from gateway.exchange import BodySink, BodySource


class TeeState(Enum):
    PENDING = "pending"
    COMPLETE = "complete"  # the whole body is kept
    TOO_LARGE = "too_large"  # over the limit: nothing is kept
    FAILED = "failed"  # broke off or was aborted before its end


class BodyTee:
    """A ``BodySource`` over ``source`` that keeps what passes (the sink of ``source``)."""

    __slots__ = ("_chunks", "_kept", "_limit", "_sink", "_source", "_waiter", "state")

    def __init__(self, source: BodySource, limit: int) -> None:
        self._source = source
        self._limit = limit
        self._chunks: list[bytes] = []
        self._kept = 0
        self._sink: BodySink | None = None
        self._waiter: asyncio.Future[TeeState] | None = None
        self.state = TeeState.PENDING

    # -- BodySource ---------------------------------------------------------------------------
    @property
    def length(self) -> int | None:
        return self._source.length

    @property
    def started(self) -> bool:
        return self._sink is not None

    def start(self, sink: BodySink) -> None:
        self._sink = sink
        self._source.start(self)

    def pause(self) -> None:
        self._source.pause()

    def resume(self) -> None:
        self._source.resume()

    def abort(self) -> None:
        self._settle(TeeState.FAILED)
        self._source.abort()

    def when_done(self, callback: Callable[[], None]) -> None:
        self._source.when_done(callback)

    # -- BodySink (from the source) -------------------------------------------------------------
    def on_data(self, chunk: bytes) -> None:
        if self.state is TeeState.PENDING:
            self._kept += len(chunk)
            if self._kept > self._limit:
                self._settle(TeeState.TOO_LARGE)
            else:
                self._chunks.append(chunk)
        if self._sink is not None:
            self._sink.on_data(chunk)

    def on_end(self) -> None:
        self._settle(TeeState.COMPLETE)
        if self._sink is not None:
            self._sink.on_end()

    def on_error(self, exc: BaseException) -> None:
        self._settle(TeeState.FAILED)
        if self._sink is not None:
            self._sink.on_error(exc)

    # -- the copy -------------------------------------------------------------------------------
    @property
    def chunks(self) -> list[bytes]:
        """What was kept: the whole body once ``state`` is COMPLETE."""
        return self._chunks

    def body(self) -> bytes:
        return b"".join(self._chunks)

    async def settled(self) -> TeeState:
        """The state once the body is over (at once when it already is)."""
        if self.state is not TeeState.PENDING:
            return self.state
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._waiter)

    def _settle(self, state: TeeState) -> None:
        if self.state is not TeeState.PENDING:
            return
        self.state = state
        if state is not TeeState.COMPLETE:
            self._chunks = []
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(state)
