"""An overall deadline for a call: retries, hedges and fallbacks included."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from resilience.errors import DeadlineExceeded

R = TypeVar("R")


async def within(seconds: float, call: Callable[[], Awaitable[R]]) -> R:
    """``call()``'s result, or ``DeadlineExceeded`` once ``seconds`` have passed (the call is
    cancelled then: every attempt in it stops)."""
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await call()
    except TimeoutError as exc:
        if not scope.expired():
            raise  # an attempt's own timeout inside the call, not the deadline
        raise DeadlineExceeded(f"request deadline of {seconds:g}s exceeded") from exc
