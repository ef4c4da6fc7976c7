"""Blocking-query rules, with an injected clock, rng and sleep: no real waiting."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from discovery.consul.watch import BlockingWatch, WatchPolicy
from tests.support.clock import FakeClock

Step = tuple[int, str] | Exception


class Script:
    """Answers fetches from a list; records the (index, wait) each was asked with."""

    def __init__(self, clock: FakeClock, steps: list[Step], takes: float = 1.0) -> None:
        self.clock = clock
        self.steps = steps
        self.takes = takes
        self.asked: list[tuple[int, float]] = []

    async def __call__(self, index: int, wait: float) -> tuple[int, str]:
        self.asked.append((index, wait))
        self.clock.now += self.takes
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def make(
    steps: list[Step], *, takes: float = 1.0, policy: WatchPolicy | None = None
) -> tuple[BlockingWatch[str], Script, list[str], list[float]]:
    clock = FakeClock()
    script = Script(clock, steps, takes)
    changes: list[str] = []
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        clock.now += delay

    watch = BlockingWatch(
        "test",
        script,
        changes.append,
        policy=policy or WatchPolicy(wait=30.0),
        clock=clock,
        rng=random.Random(7),
        sleep=sleep,
    )
    return watch, script, changes, sleeps


async def run(watch: BlockingWatch[str], steps: int) -> None:
    for _ in range(steps):
        await watch.step()


async def test_first_answer_is_applied_and_the_next_query_blocks_on_its_index() -> None:
    watch, script, changes, _ = make([(5, "a"), (5, "a"), (9, "b")])
    await run(watch, 3)
    assert changes == ["a", "b"]
    assert [index for index, _ in script.asked] == [0, 5, 5]
    assert watch.value == "b"
    assert watch.state.loaded


async def test_index_going_backwards_resets_to_a_non_blocking_read() -> None:
    watch, script, changes, _ = make([(50, "a"), (10, "restored"), (11, "c")])
    await run(watch, 3)
    assert [index for index, _ in script.asked] == [0, 50, 0]
    assert changes == ["a", "restored", "c"]


async def test_an_index_of_zero_is_held_at_one_so_queries_keep_blocking() -> None:
    watch, script, _, _ = make([(0, "a"), (0, "a")])
    await run(watch, 2)
    assert [index for index, _ in script.asked] == [0, 1]


async def test_errors_keep_the_last_value_reset_the_index_and_back_off_with_a_cap() -> None:
    policy = WatchPolicy(wait=30.0, backoff_base=0.2, backoff_max=1.0)
    boom = ConnectionError("agent down")
    watch, script, changes, sleeps = make(
        [(7, "a"), boom, boom, boom, boom, boom, (8, "b")], policy=policy
    )
    await run(watch, 6)
    assert watch.value == "a"  # last-known-good
    assert watch.state.last_error == "agent down"
    assert watch.state.failures == 5
    backoffs = sleeps[-5:]
    ceilings = [0.2, 0.4, 0.8, 1.0, 1.0]
    for delay, ceiling in zip(backoffs, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    await run(watch, 1)
    assert [index for index, _ in script.asked][-1] == 0  # after an error: start over
    assert changes == ["a", "b"]
    assert watch.state.failures == 0
    assert watch.state.last_error is None


async def test_snapshot_age_grows_during_an_outage() -> None:
    watch, _, _, _ = make([(3, "a"), ConnectionError("down"), ConnectionError("down")])
    await run(watch, 1)
    clock = watch._clock
    loaded_at = watch.state.last_success
    assert loaded_at is not None
    await run(watch, 2)
    age = watch.state.age(clock.monotonic())
    assert age is not None and age > 1.0


async def test_fast_answers_are_rate_limited() -> None:
    policy = WatchPolicy(wait=30.0, min_interval=0.5)
    watch, _, _, sleeps = make([(1, "a"), (2, "b"), (3, "c")], takes=0.1, policy=policy)
    await run(watch, 3)
    assert sleeps == pytest.approx([0.4, 0.4, 0.4])


async def test_slow_answers_are_not_delayed() -> None:
    watch, _, _, sleeps = make([(1, "a"), (1, "a")], takes=30.0)
    await run(watch, 2)
    assert sleeps == []


@pytest.mark.parametrize("seed", range(20))
def test_wait_carries_jitter_below_the_configured_wait(seed: int) -> None:
    policy = WatchPolicy(wait=30.0, wait_jitter=0.1)
    noop: Callable[[str], None] = lambda _: None  # noqa: E731
    watch: BlockingWatch[str] = BlockingWatch(
        "w", Script(FakeClock(), []), noop, policy=policy, rng=random.Random(seed)
    )
    waits = {watch.next_wait() for _ in range(10)}
    assert all(27.0 <= w <= 30.0 for w in waits)
    assert len(waits) > 1


async def test_an_update_that_fails_to_apply_does_not_end_the_watch() -> None:
    clock = FakeClock()
    script = Script(clock, [(1, "a"), (2, "b")])
    applied: list[str] = []

    def apply(value: str) -> None:
        if value == "a":
            raise ValueError("owner bug")
        applied.append(value)

    async def sleep(delay: float) -> None:
        clock.now += delay

    watch = BlockingWatch("w", script, apply, clock=clock, rng=random.Random(1), sleep=sleep)
    await watch.step()
    await watch.step()
    assert applied == ["b"]
    assert watch.state.loaded
