"""The token bucket's arithmetic and the in-process limiter, on an injected clock: refill is
continuous and sub-second, a bucket never holds more than its capacity, idle buckets are
forgotten, and the key cap holds."""

from __future__ import annotations

import pytest

from resilience.ratelimit.base import SyncRateLimiter
from resilience.ratelimit.local import SWEEP_INTERVAL, LocalRateLimiter, LocalRateLimiters
from resilience.ratelimit.policy import (
    MAX_KEY_LENGTH,
    BucketPolicy,
    Decision,
    compact_key,
    take,
)
from tests.support.clock import FakeClock


def test_take_refills_continuously_up_to_capacity() -> None:
    policy = BucketPolicy(replenish_rate=5, burst_capacity=10)
    assert take(policy, 0.0, 0.1) == (False, 0.5)  # 0.1 s at 5/s: half a token
    allowed, left = take(policy, 0.0, 0.2)
    assert allowed
    assert left == pytest.approx(0.0)
    assert take(policy, 3.0, 60.0) == (True, 9.0)  # never more than the capacity
    assert take(policy, 3.0, -5.0) == (True, 2.0)  # a clock going back refills nothing


def test_a_burst_takes_the_capacity_then_the_rate() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(BucketPolicy(5, 10), clock)
    allowed = [limiter.try_acquire("k").allowed for _ in range(40)]
    assert allowed.count(True) == 10
    assert allowed[:10] == [True] * 10
    clock.advance(0.19)  # not yet one token at 5/s
    assert not limiter.try_acquire("k").allowed
    clock.advance(0.01)
    decision = limiter.try_acquire("k")
    assert decision.allowed
    assert decision.remaining == pytest.approx(0.0, abs=1e-9)
    clock.advance(1.0)  # 5 more, sub-second precision carried over
    assert [limiter.try_acquire("k").allowed for _ in range(6)] == [True] * 5 + [False]


def test_refused_requests_cost_nothing() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(BucketPolicy(1, 2), clock)
    assert limiter.try_acquire("k").allowed
    assert limiter.try_acquire("k").allowed
    for _ in range(5):
        clock.advance(0.1)
        assert not limiter.try_acquire("k").allowed
    clock.advance(0.5)  # 1 s since the bucket emptied: one token, refusals took none
    assert limiter.try_acquire("k").allowed


def test_keys_are_independent() -> None:
    limiter = LocalRateLimiter(BucketPolicy(1, 1), FakeClock())
    assert limiter.try_acquire("a").allowed
    assert not limiter.try_acquire("a").allowed
    assert limiter.try_acquire("b").allowed


def test_requested_tokens_make_slow_rates() -> None:
    # SCG's documented 1 request a minute: replenishRate 1, requestedTokens 60, burst 60.
    clock = FakeClock()
    limiter = LocalRateLimiter(BucketPolicy(1, 60, 60), clock)
    assert limiter.try_acquire("k") == Decision(True, 0.0)
    clock.advance(59.5)
    refused = limiter.try_acquire("k")
    assert not refused.allowed
    assert limiter.policy.retry_after(refused.remaining) == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.try_acquire("k").allowed


def test_zero_capacity_refuses_everything() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(BucketPolicy(10, 0), clock)
    clock.advance(100)
    assert not limiter.try_acquire("k").allowed
    assert limiter.policy.retry_after(0.0) is None  # never


def test_idle_buckets_are_forgotten_after_their_fill_time() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(BucketPolicy(10, 20), clock)  # fills in 2 s
    for index in range(100):
        limiter.try_acquire(f"k{index}")
    assert len(limiter) == 100
    clock.advance(1.5)
    limiter.try_acquire("fresh")  # a sweep is due, but nobody is full yet
    assert len(limiter) == 101
    clock.advance(max(SWEEP_INTERVAL, 0.6))
    limiter.try_acquire("fresh")
    assert len(limiter) == 1  # the 100 were full again: dropped, "fresh" stays


def test_a_used_bucket_is_kept() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(BucketPolicy(10, 20), clock)
    for _ in range(20):
        limiter.try_acquire("busy")
    limiter.try_acquire("idle")
    for _ in range(5):
        clock.advance(1.0)
        limiter.try_acquire("busy")
    assert len(limiter) == 1
    # "busy" kept its state: 20 taken, then 1 s of refill (10) between each of 5 requests.
    assert limiter.try_acquire("busy").remaining == pytest.approx(18.0)


def test_the_key_cap_drops_the_least_recently_used() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(BucketPolicy(1, 5), clock, max_keys=3)
    for key in ("a", "b", "c"):
        limiter.try_acquire(key)
    limiter.try_acquire("a")  # a is now the most recently used
    limiter.try_acquire("d")
    assert len(limiter) == 3
    # b went: it starts afresh with a full bucket; a kept its own (3 left after this one).
    assert limiter.try_acquire("b").remaining == 4.0
    assert limiter.try_acquire("a").remaining == 2.0


def test_long_keys_are_stored_as_a_digest() -> None:
    long_a, long_b = "a" * 5000, "a" * 4999 + "b"
    assert len(compact_key(long_a)) <= MAX_KEY_LENGTH
    assert compact_key(long_a) != compact_key(long_b)
    assert compact_key("short") == "short"
    limiter = LocalRateLimiter(BucketPolicy(1, 1), FakeClock())
    assert limiter.try_acquire(long_a).allowed
    assert not limiter.try_acquire(long_a).allowed
    assert limiter.try_acquire(long_b).allowed


def test_the_factory_keeps_buckets_across_a_reload() -> None:
    factory = LocalRateLimiters(FakeClock())
    first = factory.limiter("route-a", BucketPolicy(1, 1))
    assert isinstance(first, SyncRateLimiter)
    assert first.try_acquire("k").allowed
    again = factory.limiter("route-a", BucketPolicy(1, 1))
    assert again is first
    assert not again.try_acquire("k").allowed
    changed = factory.limiter("route-a", BucketPolicy(2, 2))  # a new policy: new buckets
    assert changed is not first
    assert changed.try_acquire("k").allowed
    factory.retain(["route-b"])
    assert factory.limiter("route-a", BucketPolicy(2, 2)) is not changed


async def test_acquire_is_the_same_decision() -> None:
    limiter = LocalRateLimiter(BucketPolicy(1, 1), FakeClock())
    assert (await limiter.acquire("k")).allowed
    assert not (await limiter.acquire("k")).allowed


@pytest.mark.parametrize(
    ("rate", "burst", "requested"),
    [(0, 1, 1), (-1, 1, 1), (1, -1, 1), (1, 1, 0), (1, 2**53, 1)],
)
def test_a_bad_policy_is_refused(rate: float, burst: float, requested: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        BucketPolicy(rate, burst, requested)


@pytest.mark.parametrize(
    "policy",
    [
        BucketPolicy(replenish_rate=10, burst_capacity=20, requested_tokens=1),
        BucketPolicy(replenish_rate=2.5, burst_capacity=100000000, requested_tokens=3),
    ],
)
def test_the_hand_packed_evalsha_is_what_redis_py_would_send(policy: BucketPolicy) -> None:
    from redis.asyncio.connection import Connection

    from resilience.ratelimit import redis_backend

    key = "meshgate:rl:3:api:ключ"
    theirs = b"".join(
        Connection().pack_command(
            "EVALSHA",
            redis_backend.SCRIPT_SHA,
            1,
            key,
            policy.replenish_rate,
            policy.burst_capacity,
            policy.requested_tokens,
        )
    )
    ours = redis_backend._evalsha(key, redis_backend._policy_args(policy))
    assert ours == theirs
