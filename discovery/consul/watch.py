"""One Consul blocking query, run forever: fetch, hand the result on when it changed, repeat.

Follows Consul's blocking-query rules (https://developer.hashicorp.com/consul/api-docs/features/blocking):
- the index is reset to 0 when it goes backwards (a snapshot restore or a new cluster) and held
  at ≥ 1 after a response, so a buggy 0 never turns the loop into a busy poll;
- ``wait`` carries jitter so watches started together do not wake together;
- wake-ups are rate-limited (a key that changes constantly costs one query per
  ``min_interval``, not a hot loop);
- after an error the index is reset and the next try waits an exponential, jittered backoff
  capped at ``backoff_max``, so watches resume within seconds after an agent restart.

The last good value is never dropped on an error: the owner keeps serving it
(last-known-good), and ``WatchState`` tells how old it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from resilience.backoff import Backoff
from resilience.clock import Clock, SystemClock

T = TypeVar("T")

log = logging.getLogger("meshgate.consul")

# fetch(index, wait_seconds) -> (new index, value)
Fetch = Callable[[int, float], Awaitable[tuple[int, T]]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WatchPolicy:
    wait: float = 30.0
    wait_jitter: float = 0.1  # each query waits wait * (1 - U[0, jitter])
    min_interval: float = 0.05
    backoff_base: float = 0.2
    backoff_max: float = 5.0


@dataclass(slots=True)
class WatchState:
    """What readiness and the actuator show about one watch."""

    loaded: bool = False
    index: int = 0
    last_success: float | None = None  # clock.monotonic() of the last good response
    last_error: str | None = None
    failures: int = 0  # consecutive

    def age(self, now: float) -> float | None:
        return None if self.last_success is None else max(0.0, now - self.last_success)


class BlockingWatch(Generic[T]):
    def __init__(
        self,
        name: str,
        fetch: Fetch[T],
        on_change: Callable[[T], None],
        *,
        policy: WatchPolicy | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.name = name
        self._fetch = fetch
        self._on_change = on_change
        self.policy = policy or WatchPolicy()
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._sleep = sleep or asyncio.sleep
        # The retry filter's backoff, shaped as U[0.5, 1] * min(max, base * 2^(n-1)): centred
        # at 3/4 of the ceiling with a third of that either side.
        self._backoff = Backoff(
            first=0.75 * self.policy.backoff_base,
            maximum=0.75 * self.policy.backoff_max,
            factor=2.0,
            based_on_previous=False,
            random_factor=1 / 3,
        )
        self.state = WatchState()
        self._task: asyncio.Task[None] | None = None
        self._value: T | None = None

    @property
    def value(self) -> T | None:
        return self._value

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def next_wait(self) -> float:
        return self.policy.wait * (1.0 - self._rng.random() * self.policy.wait_jitter)

    def backoff(self, failures: int) -> float:
        """Jittered exponential backoff: U[0.5, 1] * min(max, base * 2^(n-1))."""
        return self._backoff.delay(failures, None, self._rng)

    async def run(self) -> None:
        while True:
            await self.step()

    async def step(self) -> None:
        """One query and what follows it (the delay before the next): the unit tests' handle."""
        state = self.state
        started = self._clock.monotonic()
        try:
            index, value = await self._fetch(state.index, self.next_wait())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state.failures += 1
            state.index = 0
            state.last_error = str(exc) or type(exc).__name__
            delay = self.backoff(state.failures)
            # The first failure is news; the following ones are the same outage.
            level = logging.WARNING if state.failures == 1 else logging.DEBUG
            log.log(level, "%s: %s; retrying in %.2fs", self.name, state.last_error, delay)
            await self._sleep(delay)
            return
        if state.failures:
            log.info("%s: recovered after %d failed attempts", self.name, state.failures)
        state.failures = 0
        state.last_error = None
        state.last_success = self._clock.monotonic()
        changed = not state.loaded or index != state.index
        # Backwards: start over with a non-blocking read. Otherwise never 0, which wouldn't block.
        state.index = 0 if index < state.index else max(index, 1)
        if changed:
            state.loaded = True
            self._value = value
            try:
                self._on_change(value)
            except Exception:
                # The owner's bug must not end the watch: later values may apply fine.
                log.exception("%s: applying an update failed", self.name)
        elapsed = self._clock.monotonic() - started
        if elapsed < self.policy.min_interval:
            await self._sleep(self.policy.min_interval - elapsed)
