"""Token buckets in Redis, so every gateway process (and replica) sharing the Redis shares one
limit per (scope, key).

One atomic Lua script per request does the refill and the take with Redis's own clock
(``TIME``, seconds and microseconds), so the callers' clocks never matter. It is sent by SHA
(``EVALSHA``) and loaded only when Redis answers NOSCRIPT (the first call, or after Redis
restarted). Each bucket is one hash that expires after twice its fill time: an idle key is
then full, which is the same as absent, so Redis forgets it.

The decisions asked in one turn of the event loop go out together, one pipeline of EVALSHAs
on one connection (as SCG's Lettuce pipelines on its one connection): under load a round trip
and its two system calls serve many requests, and a burst of requests does not open a
connection each. Every decision is still its own atomic script.

Redis is never allowed to take the gateway down with it: a call gets ``budget`` seconds (50 ms
by default) for everything — a connection from the pool, a reconnect, the script. A call that
fails or runs over is decided by the failure policy (open, as SCG: allowed; closed: refused),
counted, and logged at most once per ``LOG_EVERY`` seconds. After a timeout or a connection
failure the next ``cooldown`` seconds are decided the same way without asking (a stalled Redis
costs one budget, not one per request); then the next request tries again, so recovery needs
no restart: the client's pool reconnects on that call.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from resilience.clock import Clock, SystemClock
from resilience.ratelimit.base import RateLimitEvents
from resilience.ratelimit.policy import BucketPolicy, Decision, compact_key

log = logging.getLogger("meshgate.ratelimit")

# KEYS[1]: the bucket. ARGV: replenish rate, burst capacity, requested tokens.
# Returns {1 when allowed else 0, tokens left (a string: Redis would truncate a Lua number)}.
SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'stamp')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = capacity
  stamp = now
end
local filled = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
if filled >= requested then
  allowed = 1
  filled = filled - requested
end
redis.call('HSET', key, 'tokens', filled, 'stamp', now)
redis.call('PEXPIRE', key, math.max(1000, math.ceil(capacity / rate * 2000)))
return {allowed, tostring(filled)}
"""
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
# EVALSHA <sha> 1 <key> <rate> <burst> <requested> in RESP, packed here rather than by
# redis-py (its generic packing was a tenth of a decision's cost): the fixed head, then the key,
# then the policy's three arguments, packed once per policy.
_EVALSHA_HEAD = b"*7\r\n$7\r\nEVALSHA\r\n$40\r\n" + SCRIPT_SHA.encode() + b"\r\n$1\r\n1\r\n"


def _bulk(value: float) -> bytes:
    # As redis-py's encoder writes numbers: an int as such, a float by repr.
    text = (str(value) if isinstance(value, int) else repr(value)).encode()
    return b"$%d\r\n%b\r\n" % (len(text), text)


def _policy_args(policy: BucketPolicy) -> bytes:
    return (
        _bulk(policy.replenish_rate) + _bulk(policy.burst_capacity) + _bulk(policy.requested_tokens)
    )


def _evalsha(key: str, policy_args: bytes) -> bytes:
    encoded = key.encode()
    return b"%b$%d\r\n%b\r\n%b" % (_EVALSHA_HEAD, len(encoded), encoded, policy_args)


# A call's whole budget, and how long a failed backend is then left alone.
BUDGET = 0.05
COOLDOWN = 0.5
# At most one log line per this many seconds while the backend fails.
LOG_EVERY = 10.0
# Connections one process keeps (batches in flight at once); more wait, within their budget.
MAX_CONNECTIONS = 16
KEY_PREFIX = "meshgate:rate:"


# A decision waiting for its batch: the bucket's key, its policy, where the answer goes.
_Pending = tuple[str, BucketPolicy, "asyncio.Future[tuple[bool, float]]"]


def describe_url(url: str) -> str:
    """``redis://host:port/db`` without user or password, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisRateLimiter:
    """One scope's view of the shared buckets (holds no state of its own)."""

    __slots__ = ("_backend", "_prefix", "policy")

    def __init__(self, backend: RedisRateLimiters, scope: str, policy: BucketPolicy) -> None:
        self._backend = backend
        self.policy = policy
        # The scope's length first, so no (scope, key) pair can spell another's Redis key.
        self._prefix = f"{KEY_PREFIX}{len(scope)}:{scope}:"

    async def acquire(self, key: str) -> Decision:
        return await self._backend.decide(self._prefix + compact_key(key), self.policy)


class RedisRateLimiters:
    def __init__(
        self,
        url: str,
        *,
        fail_open: bool = True,
        budget: float = BUDGET,
        cooldown: float = COOLDOWN,
        clock: Clock | None = None,
        events: RateLimitEvents | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._url = url
        self._fail_open = fail_open
        self._budget = budget
        self._cooldown = cooldown
        self._clock = clock or SystemClock()
        self._events = events
        self._max_connections = max_connections
        self._client: Redis | None = None  # made on first use, inside the running loop
        self._retry_at = 0.0  # monotonic: until then failures are assumed, not tried
        self._failing = False
        self._log_at = 0.0
        self._unlogged = 0
        self._pending: list[_Pending] = []  # asked this turn of the loop, not sent yet
        self._sending: set[asyncio.Task[None]] = set()
        self._packed: dict[BucketPolicy, bytes] = {}  # each policy's arguments, in RESP

    @property
    def events(self) -> RateLimitEvents | None:
        return self._events

    @property
    def fail_open(self) -> bool:
        return self._fail_open

    def limiter(self, scope: str, policy: BucketPolicy) -> RedisRateLimiter:
        return RedisRateLimiter(self, scope, policy)

    def retain(self, scopes: Iterable[str]) -> None:
        """Nothing to forget here: Redis expires idle buckets itself."""

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose(close_connection_pool=True)

    def _redis(self) -> Redis:
        client = self._client
        if client is None:
            pool = BlockingConnectionPool.from_url(
                self._url,
                max_connections=self._max_connections,
                timeout=None,  # the call's budget bounds the wait for a connection
                # No read timeout per reply (a timer each): the batch's budget bounds them.
                socket_timeout=None,
                socket_connect_timeout=self._budget,
                # No retries of our own: a retry would spend the budget again.
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
                driver_info=None,  # no CLIENT SETINFO: a connection is ready one step sooner
            )
            client = self._client = Redis(connection_pool=pool)
        return client

    async def decide(self, key: str, policy: BucketPolicy) -> Decision:
        now = self._clock.monotonic()
        if now < self._retry_at:
            return Decision(self._fail_open, -1.0, "unavailable")
        answer = self._submit(key, policy)
        try:
            # No timeout of its own: the batch's (``_send``) bounds the round trip and fails
            # every answer it holds when it runs out, so a decision waits at most one loop
            # turn plus the budget. (A timer per decision cost more than the Lua script.)
            allowed, tokens = await answer
        except (TimeoutError, redis_errors.TimeoutError) as exc:
            return self._failed("timeout", exc, now, cool=True)
        except (redis_errors.ConnectionError, OSError) as exc:
            return self._failed("connection", exc, now, cool=True)
        except (redis_errors.RedisError, ValueError, IndexError, TypeError) as exc:
            return self._failed("error", exc, now, cool=False)
        if self._failing:
            self._failing = False
            log.info("rate limiter: Redis at %s answers again", describe_url(self._url))
        return Decision(allowed, tokens)

    # -- batching: the decisions asked in one turn of the event loop share one round trip --
    def _submit(self, key: str, policy: BucketPolicy) -> asyncio.Future[tuple[bool, float]]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[bool, float]] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((key, policy, answer))
        return answer

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            async with asyncio.timeout(self._budget):
                replies = await self._evaluate([(key, policy) for key, policy, _ in batch])
        except Exception as exc:
            for *_, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        except asyncio.CancelledError:  # closing: a failure for whoever still waits
            closed = redis_errors.ConnectionError("the rate limiter is closing")
            for *_, answer in batch:
                if not answer.done():
                    answer.set_exception(closed)
            raise
        for (*_, answer), reply in zip(batch, replies, strict=True):
            if answer.done():
                continue  # its caller gave up (its own budget ran out, or it went away)
            if isinstance(reply, Exception):
                answer.set_exception(reply)
                continue
            try:
                answer.set_result((int(reply[0]) == 1, float(reply[1])))
            except (ValueError, IndexError, TypeError) as exc:
                answer.set_exception(exc)

    async def _evaluate(self, calls: list[tuple[str, BucketPolicy]]) -> list[Any]:
        client = self._redis()
        replies = await self._pipeline(client, calls)
        noscript = redis_errors.NoScriptError
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, noscript)]
        if missing:
            # First use, or Redis restarted (scripts are not persisted): load, then again.
            await client.script_load(SCRIPT)
            again = await self._pipeline(client, [calls[i] for i in missing])
            for index, reply in zip(missing, again, strict=True):
                replies[index] = reply
        return replies

    async def _pipeline(self, client: Redis, calls: list[tuple[str, BucketPolicy]]) -> list[Any]:
        """One EVALSHA per decision, written together on one pooled connection and read back
        in order; a command's own error comes back in its place (a connection failure fails
        them all). The connection is used directly, not through redis-py's ``Pipeline``,
        whose per-command machinery cost more than the round trip itself."""
        pool = client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            packed = self._packed
            commands = []
            for key, policy in calls:
                args = packed.get(policy)
                if args is None:
                    args = packed[policy] = _policy_args(policy)
                commands.append(_evalsha(key, args))
            await connection.send_packed_command(b"".join(commands), check_health=False)
            replies: list[Any] = []
            for _ in calls:
                try:
                    replies.append(await connection.read_response())
                except redis_errors.ResponseError as exc:  # NOSCRIPT and friends: its own
                    replies.append(exc)
        except BaseException:
            # Cut off mid-exchange (the budget, a close): replies may still be on their way,
            # so this connection must never be read again.
            await connection.disconnect(nowait=True)
            raise
        finally:
            await pool.release(connection)
        return replies

    def _failed(self, reason: str, exc: BaseException, now: float, *, cool: bool) -> Decision:
        if cool:
            self._retry_at = now + self._cooldown
        self._failing = True
        if self._events is not None:
            self._events.backend_error(reason)
        if now >= self._log_at:
            more = (
                f"; {self._unlogged} more failures since the last report" if self._unlogged else ""
            )
            log.warning(
                "rate limiter: Redis at %s failed (%s: %s); failing %s%s",
                describe_url(self._url),
                reason,
                str(exc) or type(exc).__name__,
                "open (requests allowed)" if self._fail_open else "closed (503)",
                more,
            )
            self._log_at = now + LOG_EVERY
            self._unlogged = 0
        else:
            self._unlogged += 1
        return Decision(self._fail_open, -1.0, reason)
