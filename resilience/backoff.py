"""Retry backoff as Spring Cloud Gateway's Retry filter configures it (``firstBackoff``,
``maxBackoff``, ``factor``, ``basedOnPreviousValue``), plus SCG's jitter definition, and an
adapter that plugs it into tenacity.
"""

from __future__ import annotations

import random
import weakref
from dataclasses import dataclass

import tenacity


@dataclass(frozen=True)
class Backoff:
    first: float = 0.005
    maximum: float | None = None
    factor: float = 2.0
    based_on_previous: bool = True
    random_factor: float = 0.0

    def __post_init__(self) -> None:
        if self.first < 0:
            raise ValueError("first must not be negative")
        if self.maximum is not None and self.maximum < 0:
            raise ValueError("maximum must not be negative")
        if self.factor <= 0:
            raise ValueError("factor must be positive")
        if not 0 <= self.random_factor <= 1:
            raise ValueError("random_factor must be within 0..1")

    def delay(self, attempt: int, previous: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1 is the first retry).
        ``previous`` is the delay returned for the retry before (None for the first); only
        ``based_on_previous`` uses it."""
        if attempt < 1:
            raise ValueError("attempt starts at 1")
        if self.based_on_previous:
            d = self.first if previous is None else previous * self.factor
        else:
            try:
                d = self.first * self.factor ** (attempt - 1)
            except OverflowError:
                # A huge attempt number: the maximum (if any) applies below.
                d = float("inf")
        if self.maximum is not None:
            d = min(d, self.maximum)
        if self.random_factor:
            spread = d * self.random_factor
            d = rng.uniform(d - spread, d + spread)
        return max(0.0, d)


class BackoffWait(tenacity.wait.wait_base):
    """``Backoff`` as a tenacity wait strategy: ``AsyncRetrying(wait=BackoffWait(b, rng))``.

    tenacity asks for the wait after attempt n failed with ``attempt_number == n``, which is
    exactly our retry number n. The previous delay is remembered per retry loop (keyed
    weakly by tenacity's ``RetryCallState``), because one retrying object, and so one wait
    strategy, serves many concurrent calls."""

    def __init__(self, backoff: Backoff, rng: random.Random) -> None:
        self._backoff = backoff
        self._rng = rng
        self._previous: weakref.WeakKeyDictionary[tenacity.RetryCallState, float] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        previous = self._previous.get(retry_state) if retry_state.attempt_number > 1 else None
        d = self._backoff.delay(retry_state.attempt_number, previous, self._rng)
        self._previous[retry_state] = d
        return d
