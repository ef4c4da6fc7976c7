"""One ``Deadlines`` across event loops of either kind (asyncio's own, whose clock it reads as
``time.monotonic``, and uvloop's, whose ``time()`` it asks): each loop's calls are held to
their deadlines by that loop's clock, whichever loop ran first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop

from discovery.mesh.deadlines import SWEEP, Deadlines
from resilience.errors import DeadlineExceeded


async def _late_and_quick(deadlines: Deadlines) -> float:
    """A call past its 0.1 s deadline (how long it took), then one in time."""

    async def slow() -> str:
        await asyncio.sleep(5)
        return "late"

    async def quick() -> str:
        return "done"

    loop = asyncio.get_running_loop()
    started = loop.time()  # uvloop's clock is cached per loop iteration: measure by it
    with pytest.raises(DeadlineExceeded):
        await deadlines.within(0.1, slow)
    took = loop.time() - started
    assert await deadlines.within(0.1, quick) == "done"
    deadlines.close()  # the sweep's timer belongs to this loop
    return took


def _run(new_loop: Callable[[], asyncio.AbstractEventLoop], deadlines: Deadlines) -> float:
    loop = new_loop()
    try:
        return loop.run_until_complete(_late_and_quick(deadlines))
    finally:
        loop.close()


@pytest.mark.parametrize(
    "order",
    [("asyncio", "uvloop"), ("uvloop", "asyncio")],
    ids=["asyncio-first", "uvloop-first"],
)
def test_each_loop_keeps_deadlines_by_its_own_clock(order: tuple[str, str]) -> None:
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop,
        "uvloop": uvloop.new_event_loop,
    }
    deadlines = Deadlines()
    for kind in order:
        took = _run(loops[kind], deadlines)
        # uvloop's clock counts whole milliseconds: a deadline reads as due a hair early.
        assert 0.099 <= took < 0.1 + SWEEP + 0.2, kind
