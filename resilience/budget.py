"""Retry budget, after Finagle's and Envoy's: retries may add at most ``ratio`` on top of the
original requests seen in a sliding window, plus a small floor so that a quiet service can
still retry at all.

Per-request retry limits alone multiply load during an outage (every request tries 1 + n
times just when the upstream can least take it); a budget caps the extra load at a fraction
of real traffic no matter how many requests are failing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from resilience.clock import Clock

_BUCKETS = 10


@dataclass(frozen=True)
class BudgetPolicy:
    ratio: float = 0.2
    window: float = 10.0
    min_retries_per_window: int = 10

    def __post_init__(self) -> None:
        if self.ratio < 0:
            raise ValueError("ratio must not be negative")
        if self.window <= 0:
            raise ValueError("window must be positive")
        if self.min_retries_per_window < 0:
            raise ValueError("min_retries_per_window must not be negative")


class RetryBudget:
    """Counts in ``_BUCKETS`` buckets of ``window / _BUCKETS`` seconds each, so a count leaves
    the window between ``window - bucket`` and ``window`` seconds after it was made. Each call
    clears the buckets the clock has moved past since the last call: at most ``_BUCKETS`` per
    call and, amortised, O(1)."""

    def __init__(self, policy: BudgetPolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock
        self._width = policy.window / _BUCKETS
        self._requests = [0] * _BUCKETS
        self._retries = [0] * _BUCKETS
        self._request_sum = 0
        self._retry_sum = 0
        self._exhausted = 0
        # The absolute number of the current bucket (monotonic time // width); its slot in
        # the ring is that number modulo _BUCKETS.
        self._bucket = self._bucket_at(clock.monotonic())

    def record_request(self) -> None:
        """Count one original request (not a retry: retries must not earn more retries)."""
        slot = self._advance()
        self._requests[slot] += 1
        self._request_sum += 1

    def try_retry(self) -> bool:
        """Take one retry from the budget. False means the budget is spent: the caller should
        stop retrying and return what it has."""
        slot = self._advance()
        # Floor the ratio part so float noise (0.2 * 100 is not exactly 20) cannot grant an
        # extra retry; the small epsilon keeps exact products from rounding down a step.
        allowance = (
            math.floor(self._policy.ratio * self._request_sum + 1e-9)
            + self._policy.min_retries_per_window
        )
        if self._retry_sum >= allowance:
            self._exhausted += 1
            return False
        self._retries[slot] += 1
        self._retry_sum += 1
        return True

    def stats(self) -> dict[str, int]:
        """Requests and retries in the current window, and how many retries were refused since
        the budget was created."""
        self._advance()
        return {
            "requests": self._request_sum,
            "retries": self._retry_sum,
            "exhausted": self._exhausted,
        }

    def _bucket_at(self, now: float) -> int:
        return int(now // self._width)

    def _advance(self) -> int:
        """Move to the current bucket, clearing the ones that left the window; returns the
        slot of the current bucket."""
        bucket = self._bucket_at(self._clock.monotonic())
        if bucket > self._bucket:
            # Past a whole window every bucket is stale: clearing each once is enough.
            stale = min(bucket - self._bucket, _BUCKETS)
            for number in range(self._bucket + 1, self._bucket + 1 + stale):
                slot = number % _BUCKETS
                self._request_sum -= self._requests[slot]
                self._retry_sum -= self._retries[slot]
                self._requests[slot] = 0
                self._retries[slot] = 0
            self._bucket = bucket
        return self._bucket % _BUCKETS
