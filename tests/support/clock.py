"""The injected clock for unit tests: time moves only when a test says so."""

from __future__ import annotations


class FakeClock:
    """``resilience.clock.Clock``: monotonic seconds from 1000, wall time a fixed epoch
    ahead of it, ``advance`` to move both."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
