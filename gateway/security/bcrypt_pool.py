"""Where bcrypt runs: a few threads of its own, never the event loop.

One bcrypt check costs 50-250 ms of CPU (cost 10-12) — on the loop that would stall every
connection of the worker for as long. bcrypt releases the GIL while it hashes, so a thread pool
runs checks beside the loop. The pool is its own, not the loop's default executor: that one also
resolves host names (``getaddrinfo``), which a flood of wrong passwords must not delay.

The pool is bounded twice: ``threads`` checks at a time, and ``max_pending`` checks accepted at
all (running or queued). Beyond that ``check`` refuses at once (the filter answers 503): a flood
of guesses then costs the gateway a bounded amount of CPU and memory, and the clients whose
credentials are already verified (cached by the filter) are not queued behind it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import bcrypt

THREADS = 2
MAX_PENDING = 64
# bcrypt reads 72 bytes of a password: Apache's htpasswd -B hashed longer ones truncated, so a
# longer password is checked as htpasswd hashed it (bcrypt 5 refuses it whole).
BCRYPT_MAX_PASSWORD = 72


def _check(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], hashed)
    except ValueError:  # a hash bcrypt cannot read: no password matches it
        return False


class BcryptPool:
    """bcrypt checks on ``threads`` threads, at most ``max_pending`` accepted at once. Threads
    start with the first check; ``close`` ends them."""

    def __init__(self, threads: int = THREADS, max_pending: int = MAX_PENDING) -> None:
        if threads < 1 or max_pending < threads:
            raise ValueError(
                f"need threads >= 1 and max_pending >= threads, got {threads}, {max_pending}"
            )
        self._threads = threads
        self._max_pending = max_pending
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0
        self._closed = False

    @property
    def pending(self) -> int:
        return self._pending

    def check(self, password: bytes, hashed: bytes) -> asyncio.Future[bool] | None:
        """Whether ``password`` matches ``hashed``, decided on a pool thread; None when the
        pool is full (or closed) and the check was not accepted."""
        if self._closed or self._pending >= self._max_pending:
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="bcrypt")
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, _check, password, hashed
        )
        self._pending += 1
        future.add_done_callback(self._done)
        return future

    def _done(self, _: asyncio.Future[bool]) -> None:
        self._pending -= 1

    def close(self) -> None:
        """Queued checks are cancelled, running ones finish on their threads."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
