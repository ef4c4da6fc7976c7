"""The overall deadline: its own expiry is ``DeadlineExceeded``; a timeout raised inside the
call (an attempt's per-try timeout) passes through as it is."""

from __future__ import annotations

import asyncio

import pytest

from resilience.deadline import within
from resilience.errors import DeadlineExceeded


async def test_the_deadline_expiring_is_deadline_exceeded() -> None:
    with pytest.raises(DeadlineExceeded, match=r"0\.05s"):
        await within(0.05, lambda: asyncio.sleep(5))


async def test_a_timeout_inside_the_call_is_not_the_deadline() -> None:
    async def attempt() -> None:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(5)

    with pytest.raises(TimeoutError) as caught:
        await within(5.0, attempt)
    assert not isinstance(caught.value, DeadlineExceeded)


async def test_a_result_within_the_deadline() -> None:
    async def answer() -> int:
        return 7

    assert await within(1.0, answer) == 7
