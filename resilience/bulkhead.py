"""Bulkhead: a cap on concurrent calls to one service, so a slow upstream ties up at most
``max_concurrent`` of the gateway's connections and memory instead of all of them.

No queueing: a call over the cap is refused at once. Waiting would only move the pile-up into
the gateway, and the client (or its retry logic) is better placed to decide whether to wait.
Plain counters without a lock: it is used from one event loop thread.
"""

from __future__ import annotations


class Bulkhead:
    def __init__(self, max_concurrent: int) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._max = max_concurrent
        self._active = 0
        self._rejected = 0

    @property
    def max_concurrent(self) -> int:
        return self._max

    @property
    def active(self) -> int:
        return self._active

    @property
    def rejected(self) -> int:
        """Calls refused since the bulkhead was created."""
        return self._rejected

    def try_enter(self) -> bool:
        """Take a slot; False (and counted as rejected) when all are taken. Every True must be
        paired with one ``leave()``, typically in a ``finally``."""
        if self._active >= self._max:
            self._rejected += 1
            return False
        self._active += 1
        return True

    def leave(self) -> None:
        if self._active <= 0:
            # An unpaired leave would silently raise the cap for everyone after it.
            raise RuntimeError("Bulkhead.leave() without a matching try_enter()")
        self._active -= 1

    def retry_after(self) -> int:
        """Seconds to suggest in Retry-After when refusing: slots free up as soon as calls in
        flight finish, so the shortest whole-second hint is the honest one."""
        return 1
