"""The calls' overall deadlines, checked by one periodic sweep instead of a loop timer per call.

A loop timer per call (``asyncio.timeout``) is an allocation, a heap insert and a cancel for
every call, and a cancelled timer stays in the loop's heap until its time: with a 30 s deadline
the heap holds tens of thousands of dead timers, and every later timer pays for them. Here a
call registers its task and deadline; one sweep every ``SWEEP`` seconds (while any call is
running) cancels the tasks that are past theirs, and the call turns that cancellation into
``DeadlineExceeded``. A deadline may fire up to ``SWEEP`` late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from resilience.errors import DeadlineExceeded

T = TypeVar("T")

SWEEP = 0.05


class _Entry:
    __slots__ = ("deadline", "expired", "seconds", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float, seconds: float) -> None:
        self.task = task
        self.deadline = deadline
        self.seconds = seconds
        self.expired = False


class Deadlines:
    """One per client (per event loop)."""

    def __init__(self, sweep: float = SWEEP) -> None:
        self._sweep_every = sweep
        self._entries: set[_Entry] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        # The loop of the latest call and its clock.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._now: Callable[[], float] | None = None

    async def within(self, seconds: float, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``'s result, or ``DeadlineExceeded`` once ``seconds`` have passed (the call
        is cancelled then: every attempt in it stops)."""
        entry = self.enter(seconds)
        if entry is None:  # not in a task: nothing to cancel, so no deadline to keep
            return await call()
        try:
            return await call()
        except asyncio.CancelledError:
            exceeded = self.exceeded(entry)
            if exceeded is None:
                raise  # cancelled by someone else
            raise exceeded from None
        finally:
            self.leave(entry)

    # ``within`` in steps, for a caller that awaits its call inline (no coroutine function to
    # hand over per call): ``enter``; the call, turning a ``CancelledError`` into what
    # ``exceeded`` returns when that is not None; then ``leave``, however the call ended.
    def enter(self, seconds: float) -> _Entry | None:
        """Start a deadline of ``seconds`` on the current task (None outside a task: nothing
        to cancel, so no deadline to keep)."""
        task = asyncio.current_task()
        if task is None:
            return None
        loop = task.get_loop()
        now = self._now
        if loop is not self._loop or now is None:
            # asyncio's own loops tell the time with time.monotonic(): read it directly.
            base = type(loop).time is asyncio.BaseEventLoop.time
            self._loop = loop
            now = self._now = time.monotonic if base else loop.time
        entry = _Entry(task, now() + seconds, seconds)
        self._entries.add(entry)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep, loop)
        return entry

    def exceeded(self, entry: _Entry) -> DeadlineExceeded | None:
        """For a ``CancelledError`` caught inside ``entry``: the error to raise instead when
        the sweep cancelled the task (which is uncancelled then), None when someone else did
        (let the cancellation go on)."""
        if not entry.expired:
            return None
        entry.task.uncancel()  # ours: the caller sees the deadline, not a cancellation
        return DeadlineExceeded(f"request deadline of {entry.seconds:g}s exceeded")

    def leave(self, entry: _Entry) -> None:
        self._entries.discard(entry)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = None
        now = loop.time()
        for entry in [e for e in self._entries if e.deadline <= now and not e.expired]:
            entry.expired = True
            entry.task.cancel()
        if self._entries:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep, loop)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
