"""HTTP Basic credentials (RFC 7617) checked against an htpasswd file.

A request's credentials are looked up in the cache of verified ones first (no bcrypt: the
common case of a valid client); otherwise bcrypt decides on the pool's threads. Requests that
arrive with the same credentials while a check is running wait for that check instead of
starting their own, so a client opening many connections at once pays one check.
"""

from __future__ import annotations

import asyncio
import binascii
from base64 import b64decode
from functools import partial

from gateway.security.bcrypt_pool import BcryptPool
from gateway.security.htpasswd import Htpasswd
from gateway.security.verified_cache import VerifiedCache, credentials_key


class PoolBusy(Exception):
    """The bcrypt pool accepts no more checks: the request is shed (503), not queued."""


def basic_credentials(value: str) -> bytes | None:
    """``user:password`` from an ``Authorization: Basic <base64>`` value; None when the value
    is another scheme or not well-formed."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if b":" in decoded else None


class BasicAuthenticator:
    """One htpasswd file's users: who a request's credentials name, if they are right."""

    __slots__ = ("_cache", "_htpasswd", "_inflight", "_pool")

    def __init__(self, htpasswd: Htpasswd, pool: BcryptPool, cache: VerifiedCache) -> None:
        self._htpasswd = htpasswd
        self._pool = pool
        self._cache = cache
        # Checks running, by credentials key: their future, and the user it would verify.
        self._inflight: dict[bytes, tuple[asyncio.Future[bool], str | None]] = {}

    def cached(self, credentials: bytes) -> tuple[bytes, str | None]:
        """The credentials' cache key, and the user when they were verified lately."""
        key = credentials_key(credentials)
        return key, self._cache.get(key)

    async def verify(self, key: bytes, credentials: bytes) -> str | None:
        """The user the credentials name when the password is theirs, else None. Raises
        PoolBusy when the check could not be started."""
        running = self._inflight.get(key)
        if running is None:
            raw_user, _, password = credentials.partition(b":")
            try:
                user: str | None = raw_user.decode("utf-8")
            except UnicodeDecodeError:
                user = None  # no such user can be in the file: checked against the dummy
            hashed, known = self._htpasswd.hash_of(user or "")
            if not known:
                user = None  # the dummy hash: as slow as a real user's, and nobody's
            future = self._pool.check(password, hashed)
            if future is None:
                raise PoolBusy("too many password checks waiting")
            running = (future, user)
            self._inflight[key] = running
            future.add_done_callback(partial(self._settled, key, user))
        future, user = running
        # Shielded: a client that goes away does not cancel the check others may wait for.
        matched = await asyncio.shield(future)
        return user if matched else None

    def _settled(self, key: bytes, user: str | None, future: asyncio.Future[bool]) -> None:
        self._inflight.pop(key, None)
        if user is None or future.cancelled() or future.exception() is not None:
            return
        if future.result():
            self._cache.put(key, user)  # successes only: a wrong guess always pays bcrypt
