"""What a rate limiter enforces (``BucketPolicy``) and what it answers (``Decision``).

The bucket is Spring Cloud Gateway's ``RedisRateLimiter``'s: it holds at most
``burst_capacity`` tokens, gains ``replenish_rate`` tokens a second, continuously, and a
request takes ``requested_tokens`` of them or is refused. Unlike SCG's script, time is kept
to the microsecond, so tokens come back smoothly rather than in lumps once a second.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

# Lua numbers are doubles: larger integers would not count exactly in Redis (SCG's bound too).
MAX_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True, slots=True)
class BucketPolicy:
    replenish_rate: float  # tokens a second
    burst_capacity: float  # tokens the bucket holds; 0 refuses every request
    requested_tokens: float = 1.0  # what one request costs

    def __post_init__(self) -> None:
        if not self.replenish_rate > 0:
            raise ValueError(f"replenish_rate must be > 0, got {self.replenish_rate}")
        if not 0 <= self.burst_capacity <= MAX_SAFE_INTEGER:
            raise ValueError(
                f"burst_capacity must be between 0 and {MAX_SAFE_INTEGER}, "
                f"got {self.burst_capacity}"
            )
        if not self.requested_tokens > 0:
            raise ValueError(f"requested_tokens must be > 0, got {self.requested_tokens}")

    @property
    def fill_time(self) -> float:
        """Seconds an empty bucket takes to fill: after that long unused, a bucket is full,
        which is the same as having none (so it may be forgotten)."""
        return self.burst_capacity / self.replenish_rate

    @property
    def satisfiable(self) -> bool:
        """A full bucket holds enough for one request (False: every request is refused)."""
        return self.requested_tokens <= self.burst_capacity

    def retry_after(self, remaining: float) -> float | None:
        """Seconds until a bucket holding ``remaining`` tokens can pay for a request; None
        when it never can."""
        if not self.satisfiable:
            return None
        return max(0.0, (self.requested_tokens - remaining) / self.replenish_rate)

    def quota(self) -> int:
        """Requests a full bucket pays for."""
        return math.floor(self.burst_capacity / self.requested_tokens)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    # Tokens left after this request; -1 when unknown (the backend could not be asked).
    remaining: float
    # Why the backend could not decide ("timeout", "connection", "error", "unavailable"):
    # ``allowed`` is then the factory's failure policy (open: True, closed: False).
    error: str | None = None


def take(policy: BucketPolicy, tokens: float, elapsed: float) -> tuple[bool, float]:
    """One request against a bucket that held ``tokens`` ``elapsed`` seconds ago: whether it
    is allowed, and the tokens left. The Redis script does the same arithmetic."""
    filled = min(policy.burst_capacity, tokens + max(0.0, elapsed) * policy.replenish_rate)
    if filled >= policy.requested_tokens:
        return True, filled - policy.requested_tokens
    return False, filled


# Keys longer than this are stored as a digest: a client-chosen key (a header value) must not
# make every bucket cost kilobytes.
MAX_KEY_LENGTH = 64


def compact_key(key: str) -> str:
    if len(key) <= MAX_KEY_LENGTH:
        return key
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"#{digest}"
