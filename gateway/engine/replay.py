"""A request body that can be sent again, so a retry re-sends what the client sent (SCG #580:
a retried POST must not arrive empty or truncated).

The first attempt streams the client's body as usual; the chunks are also kept, up to
``limit`` bytes. A later attempt gets a fresh source over the kept chunks — possible only once
the client's body has fully arrived within the limit. A larger body is streamed and forgotten
(memory stays bounded), and the request is then not retried once any of it was sent.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.exchange import BodySink, BodySource


class ReplayableBody:
    """Wraps the client's body for the first attempt; ``replay()`` gives the next ones."""

    __slots__ = ("_chunks", "_complete", "_kept", "_limit", "_overflow", "_sink", "_source")

    def __init__(self, source: BodySource, limit: int) -> None:
        self._source = source
        self._limit = limit
        self._chunks: list[bytes] = []
        self._kept = 0
        self._overflow = False
        self._complete = False
        self._sink: BodySink | None = None

    # -- BodySource (first attempt) -----------------------------------------------------------
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
        self._source.abort()

    def when_done(self, callback: Callable[[], None]) -> None:
        # The first attempt is the client's body passing through: it is over when that is.
        self._source.when_done(callback)

    # -- BodySink (from the client) -------------------------------------------------------------
    def on_data(self, chunk: bytes) -> None:
        if not self._overflow:
            self._kept += len(chunk)
            if self._kept > self._limit:
                self._overflow = True
                self._chunks.clear()  # too big to keep: stream it and forget it
            else:
                self._chunks.append(chunk)
        if self._sink is not None:
            self._sink.on_data(chunk)

    def on_end(self) -> None:
        self._complete = True
        if self._sink is not None:
            self._sink.on_end()

    def on_error(self, exc: BaseException) -> None:
        if self._sink is not None:
            self._sink.on_error(exc)

    # -- later attempts ------------------------------------------------------------------------
    @property
    def replayable(self) -> bool:
        """Another attempt can carry this body: nothing was sent yet, or all of it is kept."""
        return self._sink is None or (self._complete and not self._overflow)

    def replay(self) -> BodySource:
        if self._sink is None:
            return self  # never started (e.g. the connect failed): send it the first time
        if not self.replayable:
            raise RuntimeError("body is not replayable")
        return KeptBody(self._chunks, self.length)


class KeptBody:
    """A body in memory sent (again): all at once (it is at most some limit's bytes).
    ``length`` None sends it chunked, as the client did. It is done once written out to its
    sink, or aborted. A retry's replay, a mirrored copy and a cached body are all one."""

    __slots__ = ("_chunks", "_done", "_done_cb", "_length")

    def __init__(self, chunks: list[bytes], length: int | None) -> None:
        self._chunks = chunks
        self._length = length
        self._done = False
        self._done_cb: Callable[[], None] | None = None

    @property
    def length(self) -> int | None:
        return self._length

    def start(self, sink: BodySink) -> None:
        for chunk in self._chunks:
            sink.on_data(chunk)
        sink.on_end()
        self._finish()

    def pause(self) -> None:
        return None  # everything is already in memory; the transport buffers it

    def resume(self) -> None:
        return None

    def abort(self) -> None:
        self._finish()

    def when_done(self, callback: Callable[[], None]) -> None:
        if self._done:
            callback()
        else:
            self._done_cb = callback

    def _finish(self) -> None:
        self._done = True
        callback, self._done_cb = self._done_cb, None
        if callback is not None:
            callback()
