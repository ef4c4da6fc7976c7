"""Hedged calls, after Envoy's: if the first attempt has no answer after ``delay``, a second
one starts (the caller's picker sends it to another instance); the first good answer wins and
the other attempt is cancelled. Only for calls that are safe to make twice (idempotent, no
streamed body): deciding that is the caller's job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

R = TypeVar("R")


async def hedged(
    attempt: Callable[[], Awaitable[R]],
    delay: float,
    *,
    failed: Callable[[R], bool],
    discard: Callable[[R], None],
) -> R:
    """Run ``attempt`` and, if it is still pending after ``delay`` seconds, once more in
    parallel. A result for which ``failed`` holds (a 5xx) is kept only in case nothing better
    comes; every result not returned goes to ``discard``. When every attempt raised, the last
    error is raised."""
    first: asyncio.Future[R] = asyncio.ensure_future(attempt())
    pending: set[asyncio.Future[R]] = {first}
    try:
        done, _ = await asyncio.wait(pending, timeout=delay)
        if done:
            return first.result()
        pending.add(asyncio.ensure_future(attempt()))
        last_error: BaseException | None = None
        kept: list[R] = []  # at most one failed answer, returned if nothing better comes
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            winners: list[R] = []
            for task in done:
                error = task.exception()
                if error is not None:
                    last_error = error
                    continue
                result = task.result()
                if not winners and (not failed(result) or not pending):
                    winners.append(result)
                elif not kept and failed(result):
                    kept.append(result)
                else:
                    discard(result)
            if winners:
                for result in kept:
                    discard(result)
                return winners[0]
        if kept:
            return kept[0]
        assert last_error is not None
        raise last_error
    finally:
        # Losers (and, if we were cancelled, everything): stop them, drop their answers.
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(BaseException):
                discard(await task)
