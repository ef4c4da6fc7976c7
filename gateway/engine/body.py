"""A body streamed by callbacks from a parser to whoever consumes it.

The same class carries a client's request body to the upstream and an upstream's response body
to the client. Until a consumer attaches, chunks are buffered up to ``high_water`` and then the
producing transport stops reading; once attached, chunks go straight through and back-pressure is
the consumer's ``pause``/``resume``. No coroutine or future per chunk.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.exchange import BodySink

DEFAULT_HIGH_WATER = 256 * 1024


class StreamBody:
    __slots__ = (
        "_abort_cb",
        "_aborted",
        "_buffer",
        "_buffered",
        "_done_cb",
        "_ended",
        "_error",
        "_length",
        "_on_start",
        "_pause_cb",
        "_paused_for_buffer",
        "_received",
        "_resume_cb",
        "_sink",
        "high_water",
    )

    def __init__(
        self,
        length: int | None,
        *,
        pause_reading: Callable[[], None],
        resume_reading: Callable[[], None],
        abort: Callable[[], None],
        on_start: Callable[[], None] | None = None,
        high_water: int = DEFAULT_HIGH_WATER,
    ) -> None:
        self._length = length
        self._pause_cb = pause_reading
        self._resume_cb = resume_reading
        self._abort_cb = abort
        self._on_start = on_start
        self.high_water = high_water
        self._sink: BodySink | None = None
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._received = 0
        self._ended = False
        self._error: BaseException | None = None
        self._paused_for_buffer = False
        self._done_cb: Callable[[], None] | None = None
        self._aborted = False

    # -- BodySource -----------------------------------------------------------------------------
    @property
    def length(self) -> int | None:
        return self._length

    @property
    def complete(self) -> bool:
        return self._ended

    @property
    def started(self) -> bool:
        return self._sink is not None

    @property
    def received(self) -> int:
        return self._received

    def start(self, sink: BodySink) -> None:
        if self._sink is not None:
            raise RuntimeError("body already consumed")
        self._sink = sink
        if self._on_start is not None:
            self._on_start()
        buffered, self._buffer, self._buffered = self._buffer, [], 0
        if self._paused_for_buffer:
            # Whatever happens next (more body, or none: it may all be in the buffer already),
            # the pause taken for the buffer is over now that a consumer has it.
            self._paused_for_buffer = False
            self._resume_cb()
        for piece in buffered:
            sink.on_data(piece)
        if self._error is not None:
            sink.on_error(self._error)
        elif self._ended:
            sink.on_end()

    def pause(self) -> None:
        self._pause_cb()

    def resume(self) -> None:
        self._resume_cb()

    def when_done(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once, when the body has ended, failed or been aborted (what holds
        a slot for the whole response — a bulkhead, an in-flight count — lets go then)."""
        if self._ended or self._error is not None or self._aborted:
            callback()
        else:
            self._done_cb = callback

    def _done(self) -> None:
        callback, self._done_cb = self._done_cb, None
        if callback is not None:
            callback()

    def abort(self) -> None:
        self._aborted = True
        self._buffer.clear()
        self._buffered = 0
        if not self._ended:
            self._abort_cb()
        self._done()

    def discard(self, on_end: Callable[[], None] | None = None) -> None:
        """Drop what is buffered and whatever still arrives (the request was answered without
        reading all of its body). ``on_end`` runs when the body has fully arrived, so the
        connection can carry on with the next request."""
        self._buffer.clear()
        self._buffered = 0
        self._sink = _Discard(on_end) if on_end is not None else _DISCARD
        if self._paused_for_buffer:
            self._paused_for_buffer = False
            self._resume_cb()
        if on_end is not None and self._ended:
            on_end()

    # -- producer side (parser callbacks) ---------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self._received += len(data)
        sink = self._sink
        if sink is not None:
            sink.on_data(data)
            return
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= self.high_water and not self._paused_for_buffer:
            self._paused_for_buffer = True
            self._pause_cb()

    def feed_end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._sink is not None:
            self._sink.on_end()
        if self._done_cb is not None:
            self._done()

    def feed_error(self, exc: BaseException) -> None:
        if self._ended or self._error is not None:
            return
        self._error = exc
        if self._sink is not None:
            self._sink.on_error(exc)
        self._done()


class _Discard:
    __slots__ = ("_on_end",)

    def __init__(self, on_end: Callable[[], None] | None = None) -> None:
        self._on_end = on_end

    def on_data(self, chunk: bytes) -> None:
        return None

    def on_end(self) -> None:
        if self._on_end is not None:
            self._on_end()

    def on_error(self, exc: BaseException) -> None:
        # A body broken off while it was being dropped is over too: the connection learns it
        # now (and closes) rather than when its linger timer runs out.
        if self._on_end is not None:
            self._on_end()


_DISCARD = _Discard()
