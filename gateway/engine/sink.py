"""Requests whose answers are only counted: mirrored copies nobody compares.

A copy's response is discarded, so the full upstream machinery (a future to await, a
``Response`` with its header list, a streaming body with back-pressure, a task to drive it) is
work for nothing. Here a copy is a write and a few parser callbacks: the whole request (head
and body, already in memory) goes out in one ``writelines``, httptools reads the answer with
only the callbacks that say where it ends, and the connection goes back to its own idle list.
No task, future or timer per copy: one periodic sweep bounds every copy in flight by its
deadline and closes connections idle too long. A task exists only while a new connection is
being opened.

Plain HTTP only: a TLS shadow goes through the ordinary pool.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import httptools

# How late a copy's deadline may be noticed, at most.
SWEEP = 0.1


class SinkOutcome(Enum):
    ANSWERED = "answered"  # a final response arrived whole (or up to a close it was delimited by)
    FAILED = "failed"  # no connection, a broken or malformed answer
    TIMED_OUT = "timed_out"  # no whole answer by the deadline


# Told once per copy: the outcome and, for a failure, why.
Done = Callable[[SinkOutcome, str], None]
Origin = tuple[str, int]


@dataclass(frozen=True, slots=True)
class SinkSettings:
    idle_timeout: float = 30.0
    max_idle_per_origin: int = 1024


class _Copy:
    __slots__ = ("body", "deadline", "done", "head", "head_request", "retried")

    def __init__(
        self,
        head: bytes,
        body: Sequence[bytes],
        head_request: bool,
        deadline: float,
        done: Done,
    ) -> None:
        self.head = head
        self.body = body
        self.head_request = head_request
        self.deadline = deadline
        self.done = done
        self.retried = False


class SinkPool:
    """The connections copies go out on, per origin, on one event loop."""

    def __init__(self, settings: SinkSettings | None = None) -> None:
        self._settings = settings or SinkSettings()
        self._idle: dict[Origin, deque[_SinkConnection]] = {}
        self._busy: set[_SinkConnection] = set()
        self._opening: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._inflight = 0
        self._closed = False

    @property
    def inflight(self) -> int:
        """Copies sent or being connected whose outcome is not told yet."""
        return self._inflight

    def idle_count(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    def send(
        self,
        host: str,
        port: int,
        head: bytes,
        body: Sequence[bytes],
        *,
        head_request: bool,
        timeout: float,
        done: Done,
    ) -> None:
        """Send ``head`` and ``body`` (the framing is the head's); ``done`` is told the
        outcome once, within ``timeout`` (give or take ``SWEEP``). Never raises for the
        copy's sake: every failure is an outcome."""
        loop = asyncio.get_running_loop()
        if self._closed:
            done(SinkOutcome.FAILED, "shutting down")
            return
        self._inflight += 1
        copy = _Copy(head, body, head_request, loop.time() + timeout, done)
        self._dispatch(loop, (host, port), copy)

    def close(self) -> None:
        """Abort what is in flight (told FAILED) and close every idle connection."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for task in list(self._opening):
            task.cancel()
        for conn in list(self._busy):
            conn.fail("shutting down")
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()

    # -- what the connections tell ----------------------------------------------------------------
    def finished(self, conn: _SinkConnection, copy: _Copy, outcome: SinkOutcome, why: str) -> None:
        self._busy.discard(conn)
        self._tell(copy, outcome, why)
        if outcome is SinkOutcome.ANSWERED and conn.reusable and not self._closed:
            idle = self._idle.setdefault(conn.origin, deque())
            if len(idle) < self._settings.max_idle_per_origin:
                conn.idle_since = conn.loop.time()
                idle.append(conn)
                return
        conn.close()

    def lost_before_answer(self, conn: _SinkConnection, copy: _Copy) -> None:
        """A reused connection died before any byte of the answer: the shadow most likely
        closed it as idle just as it was picked. Once more, on a fresh one."""
        self._busy.discard(conn)
        copy.retried = True
        self._dispatch(conn.loop, conn.origin, copy, fresh=True)

    # -- internals ---------------------------------------------------------------------------------
    def _tell(self, copy: _Copy, outcome: SinkOutcome, why: str) -> None:
        self._inflight -= 1
        copy.done(outcome, why)

    def _dispatch(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        copy: _Copy,
        fresh: bool = False,
    ) -> None:
        if not fresh:
            idle = self._idle.get(origin)
            while idle:
                conn = idle.pop()
                if conn.usable:
                    self._start(loop, conn, copy, reused=True)
                    return
        task = loop.create_task(self._open(loop, origin, copy))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _open(self, loop: asyncio.AbstractEventLoop, origin: Origin, copy: _Copy) -> None:
        host, port = origin
        try:
            async with asyncio.timeout_at(copy.deadline):
                _, conn = await loop.create_connection(
                    lambda: _SinkConnection(self, origin, loop), host, port
                )
        except TimeoutError:
            self._tell(copy, SinkOutcome.TIMED_OUT, f"connect to {host}:{port} timed out")
            return
        except OSError as exc:
            self._tell(copy, SinkOutcome.FAILED, f"cannot connect to {host}:{port}: {exc}")
            return
        except asyncio.CancelledError:
            self._tell(copy, SinkOutcome.FAILED, "shutting down")
            raise
        if self._closed:
            conn.close()
            self._tell(copy, SinkOutcome.FAILED, "shutting down")
            return
        self._start(loop, conn, copy, reused=False)

    def _start(
        self,
        loop: asyncio.AbstractEventLoop,
        conn: _SinkConnection,
        copy: _Copy,
        reused: bool,
    ) -> None:
        self._busy.add(conn)
        conn.start(copy, reused)
        if self._sweeper is None:
            self._sweeper = loop.call_later(SWEEP, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = None
        now = loop.time()
        for conn in [c for c in self._busy if c.deadline <= now]:
            conn.time_out()
        expired_before = now - self._settings.idle_timeout
        for origin, idle in list(self._idle.items()):
            # LIFO: the longest idle are at the left end.
            while idle and idle[0].idle_since <= expired_before:
                idle.popleft().close()
            if not idle:
                del self._idle[origin]
        if (self._busy or self._idle) and not self._closed:
            # While only idle connections are left, their timeout is what matters.
            interval = SWEEP if self._busy else max(SWEEP, self._settings.idle_timeout / 4)
            self._sweeper = loop.call_later(interval, self._sweep, loop)


class _SinkConnection(asyncio.Protocol):
    """One connection to a shadow, one copy at a time; the answer is read and dropped."""

    def __init__(self, pool: SinkPool, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = pool
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        # None once the connection is gone (its callbacks are bound to this protocol).
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._copy: _Copy | None = None
        self._reused = False
        self._got_bytes = False
        self._final = False  # a final (non-1xx) head arrived
        self._keep_alive = True
        self.closed = False
        self.idle_since = 0.0

    @property
    def deadline(self) -> float:
        copy = self._copy
        return copy.deadline if copy is not None else float("inf")

    @property
    def usable(self) -> bool:
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    @property
    def reusable(self) -> bool:
        return self._keep_alive and self.usable

    def start(self, copy: _Copy, reused: bool) -> None:
        self._copy = copy
        self._reused = reused
        self._got_bytes = False
        self._final = False
        transport = self.transport
        assert transport is not None
        if copy.body:
            transport.writelines((copy.head, *copy.body))
        else:
            transport.write(copy.head)

    def time_out(self) -> None:
        copy = self._copy
        if copy is not None:
            self._copy = None
            self._keep_alive = False
            self._pool.finished(self, copy, SinkOutcome.TIMED_OUT, "no answer in time")

    def fail(self, why: str) -> None:
        copy = self._copy
        self._copy = None
        self._keep_alive = False
        if copy is not None:
            self._pool.finished(self, copy, SinkOutcome.FAILED, why)
        else:
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()  # nothing of ours is left to flush

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._parser = None
        copy = self._copy
        if copy is None:
            return
        self._copy = None
        if self._final:
            # A response delimited by the close: it is over.
            self._pool.finished(self, copy, SinkOutcome.ANSWERED, "")
        elif not self._got_bytes and self._reused and not copy.retried:
            self._pool.lost_before_answer(self, copy)
        else:
            self._pool.finished(self, copy, SinkOutcome.FAILED, "shadow closed the connection")

    def data_received(self, data: bytes) -> None:
        if self._copy is None:
            self.fail("bytes on an idle connection")  # a confused peer: done with it
            return
        self._got_bytes = True
        parser = self._parser
        if parser is None:
            return  # closed
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail("shadow switched protocols")
        except httptools.HttpParserError as exc:
            self.fail(f"invalid response from shadow: {exc}")

    # -- httptools callbacks -----------------------------------------------------------------------
    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None  # it is calling us
        status = parser.get_status_code()
        if 100 <= status < 200:
            if status == 101:
                self.fail("shadow switched protocols unasked")
            return  # 100 Continue / 103 Early Hints: the final answer follows
        self._final = True
        self._keep_alive = bool(parser.should_keep_alive())
        copy = self._copy
        if copy is not None and copy.head_request:
            # llhttp would wait for Content-Length bytes after a HEAD: a fresh parser, and the
            # answer is complete at its head.
            self._parser = httptools.HttpResponseParser(self)
            self._answered()

    def on_message_complete(self) -> None:
        if self._final:
            self._answered()

    def _answered(self) -> None:
        copy = self._copy
        if copy is None:
            return
        self._copy = None
        self._final = False
        self._pool.finished(self, copy, SinkOutcome.ANSWERED, "")
