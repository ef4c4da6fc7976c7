"""In-process token buckets: exact within one process (one worker), and nothing to go down.

Buckets are kept in last-use order, so the ones unused for a whole fill time — full again,
which is the same as having none — are all at the front and are dropped there, a few at a
time, without ever scanning the rest. A hard cap on keys bounds memory against a client that
invents a new key per request; past it the least recently used buckets go first (those keys
start afresh with a full bucket, the one way the cap can be lenient).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from resilience.clock import Clock, SystemClock
from resilience.ratelimit.base import RateLimitEvents
from resilience.ratelimit.policy import MAX_KEY_LENGTH, BucketPolicy, Decision, compact_key

# Most keys one limiter keeps (~200 bytes each, with keys at most MAX_KEY_LENGTH).
MAX_KEYS = 100_000
# How often idle buckets are looked for (at most; only when requests come).
SWEEP_INTERVAL = 1.0


class LocalRateLimiter:
    __slots__ = ("_buckets", "_clock", "_max_keys", "_next_sweep", "policy")

    def __init__(self, policy: BucketPolicy, clock: Clock, *, max_keys: int = MAX_KEYS) -> None:
        self.policy = policy
        self._clock = clock
        self._max_keys = max_keys
        # key -> [tokens, monotonic time they were counted]; oldest use first.
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._buckets)

    def try_acquire(self, key: str) -> Decision:
        # ``policy.take``, inlined: this runs on every limited request.
        now = self._clock.monotonic()
        if len(key) > MAX_KEY_LENGTH:
            key = compact_key(key)
        policy = self.policy
        buckets = self._buckets
        state = buckets.get(key)
        if state is None:
            tokens = policy.burst_capacity
            state = buckets[key] = [tokens, now]
            if len(buckets) > self._max_keys:
                self._sweep(now)
        else:
            elapsed = now - state[1]
            tokens = state[0]
            if elapsed > 0:
                tokens += elapsed * policy.replenish_rate
                if tokens > policy.burst_capacity:
                    tokens = policy.burst_capacity
            state[1] = now
            buckets.move_to_end(key)
        allowed = tokens >= policy.requested_tokens
        if allowed:
            tokens -= policy.requested_tokens
        state[0] = tokens
        if now >= self._next_sweep:
            self._sweep(now)
        return Decision(allowed, tokens)

    async def acquire(self, key: str) -> Decision:
        return self.try_acquire(key)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_INTERVAL
        horizon = now - self.policy.fill_time
        buckets = self._buckets
        excess = len(buckets) - self._max_keys
        while buckets:
            _, state = next(iter(buckets.items()))
            if state[1] > horizon and excess <= 0:
                break
            buckets.popitem(last=False)
            excess -= 1


class LocalRateLimiters:
    """Every scope's in-process limiters. With ``GATEWAY_WORKERS`` > 1 each worker process
    has its own: a route's limit is then per worker, not per gateway."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        events: RateLimitEvents | None = None,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self._clock = clock or SystemClock()
        self._events = events
        self._max_keys = max_keys
        self._limiters: dict[str, LocalRateLimiter] = {}

    @property
    def events(self) -> RateLimitEvents | None:
        return self._events

    def limiter(self, scope: str, policy: BucketPolicy) -> LocalRateLimiter:
        known = self._limiters.get(scope)
        if known is not None and known.policy == policy:
            return known  # a reload: the buckets carry on
        made = LocalRateLimiter(policy, self._clock, max_keys=self._max_keys)
        self._limiters[scope] = made
        return made

    def retain(self, scopes: Iterable[str]) -> None:
        keep = set(scopes)
        for scope in [s for s in self._limiters if s not in keep]:
            del self._limiters[scope]

    async def close(self) -> None:
        self._limiters.clear()
