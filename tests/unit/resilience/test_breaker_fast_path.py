"""``Breaker``'s closed-state shortcut against pybreaker's own generic path (its ``calling()``
context around the awaited call, for calls in every state): the same random runs of calls
(successes, errors, 503s, cancellations, excluded errors, several in flight at once and
finishing in any order) and clock steps, on two breakers, give the same results, the same
errors, the same state changes and the same snapshots after every step."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pybreaker
import pytest

from resilience.breaker import Breaker, BreakerPolicy, CircuitOpen, _CountAsFailure
from tests.support.clock import FakeClock

T = TypeVar("T")

OUTCOMES = ("ok", "boom", "503", "cancel", "excluded")


class Boom(Exception):
    pass


class Excluded(Exception):
    """An error the breaker is told not to count."""


async def generic_call(
    breaker: Breaker, fn: Callable[[], Awaitable[T]], is_failure: Callable[[T], bool]
) -> T:
    """``Breaker.call`` on pybreaker's generic path alone, in every state."""
    probe = breaker._admit()
    result: T
    try:
        with breaker._cb.calling():
            result = await fn()
            if is_failure(result):
                raise _CountAsFailure
    except _CountAsFailure:
        pass
    except pybreaker.CircuitBreakerError as exc:
        raise CircuitOpen(breaker.name, breaker._retry_after()) from exc
    finally:
        if probe:
            breaker._probes -= 1
    return result


@dataclass
class Side:
    """One breaker and what its calls did."""

    breaker: Breaker
    clock: FakeClock
    changes: list[tuple[str, str, str]]
    tasks: dict[int, asyncio.Task[int]] = field(default_factory=dict)
    gates: dict[int, asyncio.Event] = field(default_factory=dict)
    ended: dict[int, str] = field(default_factory=dict)


def side(fail_max: int, probes: int) -> Side:
    clock = FakeClock()
    changes: list[tuple[str, str, str]] = []
    policy = BreakerPolicy(fail_max=fail_max, reset_timeout=10.0, half_open_probes=probes)
    breaker = Breaker("svc", policy, clock, lambda *c: changes.append(c), exclude=[Excluded])
    return Side(breaker, clock, changes)


def start(s: Side, number: int, outcome: str, generic: bool) -> None:
    gate = s.gates[number] = asyncio.Event()

    async def fn() -> int:
        await gate.wait()
        if outcome == "boom":
            raise Boom
        if outcome == "excluded":
            raise Excluded
        return 503 if outcome == "503" else 200

    def is_5xx(status: int) -> bool:
        return status >= 500

    async def run() -> int:
        if generic:
            return await generic_call(s.breaker, fn, is_5xx)
        return await s.breaker.call(fn, is_5xx)

    s.tasks[number] = asyncio.create_task(run())


async def settle(s: Side) -> None:
    for _ in range(5):
        await asyncio.sleep(0)
    for number, task in list(s.tasks.items()):
        if task.done():
            del s.tasks[number]
            if task.cancelled():
                s.ended[number] = "cancelled"
            elif task.exception() is not None:
                exc = task.exception()
                s.ended[number] = type(exc).__name__
            else:
                s.ended[number] = f"returned {task.result()}"


def state(s: Side) -> tuple[object, ...]:
    snap = s.breaker.snapshot()
    return (snap, list(s.changes), dict(s.ended), s.breaker._cb.fail_counter)


@pytest.mark.parametrize("seed", range(40))
async def test_the_closed_shortcut_is_pybreakers_generic_path(seed: int) -> None:
    rng = random.Random(seed)
    fail_max, probes = rng.choice([1, 2, 3]), rng.choice([1, 2])
    fast, generic = side(fail_max, probes), side(fail_max, probes)
    outcomes: dict[int, str] = {}
    number = 0
    for _step in range(60):
        move = rng.random()
        pending = sorted(fast.tasks)
        if move < 0.45 or not pending:
            number += 1
            outcome = outcomes[number] = rng.choice(OUTCOMES)
            start(fast, number, outcome, generic=False)
            start(generic, number, outcome, generic=True)
        elif move < 0.85:
            chosen = rng.choice(pending)
            for s in (fast, generic):
                if outcomes[chosen] == "cancel":
                    s.tasks[chosen].cancel()
                else:
                    s.gates[chosen].set()
        else:
            seconds = rng.choice([1.0, 5.0, 10.0])
            fast.clock.advance(seconds)
            generic.clock.advance(seconds)
        await settle(fast)
        await settle(generic)
        assert state(fast) == state(generic), f"step {_step}"
    for s in (fast, generic):
        for task in s.tasks.values():
            task.cancel()
        await settle(s)
    assert state(fast) == state(generic)
    # The runs reach past the closed state often enough to mean something.
    assert any(new == "open" for _, _, new in fast.changes) or seed % 7 == 0


async def test_closed_calls_that_finish_after_the_breaker_opened_count_as_pybreaker_says() -> None:
    """Calls admitted while closed report to the closed state they were admitted in: a late
    success resets the counter of the open breaker, a late failure opens it again."""
    fast, generic = side(2, 1), side(2, 1)
    for s, is_generic in ((fast, False), (generic, True)):
        for number, outcome in enumerate(("boom", "boom", "ok", "boom", "boom"), start=1):
            start(s, number, outcome, is_generic)
        await settle(s)
        for number in (1, 2, 3, 4):
            s.gates[number].set()
            await settle(s)
        assert s.breaker.state == "open" and s.breaker.snapshot()["failures"] == 1
        s.gates[5].set()
        await settle(s)
    assert state(fast) == state(generic)
    assert fast.changes == [("svc", "closed", "open"), ("svc", "open", "open")]
    assert fast.ended == {1: "Boom", 2: "Boom", 3: "returned 200", 4: "Boom", 5: "Boom"}


async def test_begin_and_finish_are_call_in_steps() -> None:
    breaker = side(1, 1).breaker
    admission = breaker.begin()
    breaker.finish(admission, failure=True)  # a result that counts: opens at fail_max 1
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.begin()
