"""Credentials verified lately, so a valid client pays bcrypt once, not on every request.

Entries are keyed by SHA-256 of the credentials as the client sent them (``user:password``):
a fast hash is enough for a lookup key, and the password itself is not kept in memory. Only
successes are kept — a wrong password always pays the full bcrypt check, so a guess costs an
attacker what it costs without the cache. The cache is bounded (least recently used entries
go first) and each entry lives ``ttl`` seconds from its verification, whatever its use.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

MAX_ENTRIES = 1024
TTL = 300.0


def credentials_key(credentials: bytes) -> bytes:
    return hashlib.sha256(credentials).digest()


class VerifiedCache:
    """``key -> principal`` for ``ttl`` seconds, at most ``max_entries`` of them."""

    __slots__ = ("_entries", "_max", "_now", "_ttl")

    def __init__(
        self, now: Callable[[], float], *, ttl: float = TTL, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._now = now
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        principal, expires = entry
        if self._now() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return principal

    def put(self, key: bytes, principal: str) -> None:
        entries = self._entries
        entries[key] = (principal, self._now() + self._ttl)
        entries.move_to_end(key)
        while len(entries) > self._max:
            entries.popitem(last=False)
