"""The mesh client's overall deadlines: one sweep, not a loop timer per call."""

from __future__ import annotations

import asyncio

import pytest

from discovery.mesh.deadlines import SWEEP, Deadlines
from resilience.errors import DeadlineExceeded


async def test_a_call_in_time_returns_its_result() -> None:
    deadlines = Deadlines()

    async def quick() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert await deadlines.within(1.0, quick) == "done"


async def test_a_call_past_its_deadline_is_cancelled_as_deadline_exceeded() -> None:
    deadlines = Deadlines()
    stopped = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(5)
        finally:
            stopped.set()
        return "late"

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeadlineExceeded, match=r"0\.1s"):
        await deadlines.within(0.1, slow)
    assert 0.1 <= loop.time() - started < 0.1 + SWEEP + 0.1
    assert stopped.is_set()  # the call itself was stopped
    # The task is not left cancelled: it goes on awaiting normally.
    await asyncio.sleep(0.01)
    assert asyncio.current_task() is not None
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_cancellation_from_outside_is_not_a_deadline() -> None:
    deadlines = Deadlines()

    async def slow() -> None:
        await asyncio.sleep(5)

    task = asyncio.create_task(deadlines.within(10.0, slow))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_sweep_stops_when_no_call_is_running() -> None:
    deadlines = Deadlines()

    async def quick() -> None:
        await asyncio.sleep(0)

    await asyncio.gather(*(deadlines.within(1.0, quick) for _ in range(10)))
    await asyncio.sleep(SWEEP * 2.5)
    assert deadlines._sweeper is None
    assert not deadlines._entries
