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
from collections.abc import Awaitable, Callable
from typing import TypeVar

from resilience.errors import DeadlineExceeded

T = TypeVar("T")

SWEEP = 0.05


class _Entry:
    __slots__ = ("deadline", "expired", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.expired = False


class Deadlines:
    """One per client (per event loop)."""

    def __init__(self, sweep: float = SWEEP) -> None:
        self._sweep_every = sweep
        self._entries: set[_Entry] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    async def within(self, seconds: float, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``'s result, or ``DeadlineExceeded`` once ``seconds`` have passed (the call
        is cancelled then: every attempt in it stops)."""
        task = asyncio.current_task()
        if task is None:  # not in a task: nothing to cancel, so no deadline to keep
            return await call()
        loop = asyncio.get_running_loop()
        entry = _Entry(task, loop.time() + seconds)
        self._entries.add(entry)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._sweep_every, self._sweep, loop)
        try:
            return await call()
        except asyncio.CancelledError:
            if not entry.expired:
                raise  # cancelled by someone else
            task.uncancel()  # ours: the caller sees the deadline, not a cancellation
            raise DeadlineExceeded(f"request deadline of {seconds:g}s exceeded") from None
        finally:
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
