"""The rate limiter protocols: what the gateway's RequestRateLimiter (or any caller) uses,
whatever keeps the buckets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from resilience.ratelimit.policy import BucketPolicy, Decision


class RateLimitEvents(Protocol):
    """Where limiters report what metrics count (the gateway's Prometheus counters)."""

    def decision(self, scope: str, outcome: str) -> None:
        """``outcome``: allowed, denied, empty_key (the caller had no key) or backend_error."""
        ...

    def backend_error(self, reason: str) -> None:
        """A call to the shared backend failed: timeout, connection or error."""
        ...


class RateLimiter(Protocol):
    """One scope's buckets under one policy, by key."""

    @property
    def policy(self) -> BucketPolicy: ...

    async def acquire(self, key: str) -> Decision:
        """Take ``policy.requested_tokens`` from ``key``'s bucket if it holds them."""
        ...


@runtime_checkable
class SyncRateLimiter(RateLimiter, Protocol):
    """A limiter that decides without waiting (in-process buckets): callers on a hot path may
    skip the coroutine."""

    def try_acquire(self, key: str) -> Decision: ...


class RateLimiterFactory(Protocol):
    """Makes the limiter of each scope, and owns what they share (a Redis client)."""

    @property
    def events(self) -> RateLimitEvents | None: ...

    def limiter(self, scope: str, policy: BucketPolicy) -> RateLimiter:
        """The limiter for ``scope`` (a route id): asked again with the same scope and policy
        (a reload), it keeps the buckets it had."""
        ...

    def retain(self, scopes: Iterable[str]) -> None:
        """Forget the buckets of every scope not in ``scopes`` (routes that are gone)."""
        ...

    async def close(self) -> None: ...
