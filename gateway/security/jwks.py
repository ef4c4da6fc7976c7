"""JWKS: the signing keys an identity provider publishes, fetched with aiohttp and cached.

One ``JwksCache`` per JWKS URI, shared by every JwtAuth filter naming it and kept across
reloads (``JwksCaches``, owned by the running gateway). How it behaves:
- fresh for the response's ``Cache-Control: max-age``, clamped to ``JwksPolicy``'s bounds
  (default when absent); when stale, a request that needs a key starts a refresh in the
  background and keeps using the cached keys meanwhile;
- a token naming an unknown ``kid`` may cause a fetch at most once per ``refetch_interval``
  for the whole URI (not per kid: random kids must not cause a fetch each);
- a failed fetch (the provider down, a bad document) changes nothing: the cached keys keep
  working; retries back off from ``retry_min`` to ``retry_max``;
- concurrent requests that need a fetch share the one in flight.
Nothing here blocks the event loop (PyJWT's own ``PyJWKClient`` fetches with blocking urllib).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

from gateway.security.jwt import ALGORITHMS, VerifyKey, unfit_reason
from resilience.clock import Clock, SystemClock

log = logging.getLogger("meshgate.jwks")

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(?:no-store|no-cache)(?:$|[,\s=])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class JwksPolicy:
    """Seconds throughout. ``refetch_interval``: the least time between two fetches of one
    URI caused by unknown kids (any fetch counts)."""

    min_ttl: float = 300.0
    max_ttl: float = 86400.0
    default_ttl: float = 3600.0
    refetch_interval: float = 30.0
    retry_min: float = 1.0
    retry_max: float = 30.0
    timeout: float = 5.0
    max_bytes: int = 1024 * 1024
    max_keys: int = 100


def ttl_of(cache_control: str | None, policy: JwksPolicy) -> float:
    """How long a JWKS response stays fresh: its ``max-age`` within the policy's bounds
    (``no-store``/``no-cache``: the lower bound), the default when it says nothing."""
    if cache_control:
        if _NO_CACHE.search(cache_control):
            return policy.min_ttl
        match = _MAX_AGE.search(cache_control)
        if match:
            return min(policy.max_ttl, max(policy.min_ttl, float(match.group(1))))
    return policy.default_ttl


# -- the document --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Jwk:
    """One usable signing key. ``alg``: the algorithm the JWK is limited to, if it names one."""

    kid: str | None
    alg: str | None
    key: VerifyKey

    def fits(self, alg: str) -> bool:
        return (self.alg is None or self.alg == alg) and unfit_reason(self.key, alg) is None


def _public(key: Any) -> VerifyKey | None:
    if isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        key = key.public_key()
    if isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return key
    return None


def parse_jwk(data: Mapping[str, Any]) -> Jwk | None:
    """A JWK that may verify signatures, or None (an encryption key, a symmetric ``oct`` key
    — a published document must never supply HMAC secrets —, an unknown type)."""
    use = data.get("use")
    if use is not None and use != "sig":
        return None
    ops = data.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    alg = data.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg not in ALGORITHMS):
        return None
    kid = data.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    kty = data.get("kty")
    try:
        if kty == "RSA":
            key = _public(RSAAlgorithm.from_jwk(dict(data)))
        elif kty == "EC":
            key = _public(ECAlgorithm.from_jwk(dict(data)))
        elif kty == "OKP":
            key = _public(OKPAlgorithm.from_jwk(dict(data)))
        else:
            return None
    except (PyJWTError, ValueError, TypeError, KeyError):
        return None
    if key is None:
        return None
    jwk = Jwk(kid, alg, key)
    # A key too weak for every algorithm of its family (a 1024-bit RSA key) is left out.
    if not any(jwk.fits(name) for name in ALGORITHMS):
        return None
    return jwk


def parse_jwks(body: bytes, max_keys: int = 100) -> tuple[tuple[Jwk, ...], frozenset[str]]:
    """The usable keys of a JWKS document, and a fingerprint of them (it changes when the
    key set does). Raises ValueError when the document is not a JWKS or has no usable key."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWK set (no "keys" list)')
    keys: list[Jwk] = []
    prints: set[str] = set()
    for item in document["keys"][:max_keys]:
        if not isinstance(item, dict):
            continue
        jwk = parse_jwk(item)
        if jwk is not None:
            keys.append(jwk)
            prints.add(json.dumps(item, sort_keys=True, separators=(",", ":")))
    if not keys:
        raise ValueError("no usable signing key in the JWK set")
    return tuple(keys), frozenset(prints)


# -- fetching ------------------------------------------------------------------------------------
class JwksFetchError(Exception):
    """A JWKS document could not be had (connection, status, size, timeout)."""


@dataclass(frozen=True, slots=True)
class JwksDocument:
    body: bytes
    cache_control: str | None = None


class JwksFetcher(Protocol):
    async def fetch(self, uri: str) -> JwksDocument:
        """The document at ``uri``; raises JwksFetchError."""
        ...

    async def close(self) -> None: ...


class HttpJwksFetcher:
    """``JwksFetcher`` over aiohttp: one session (made on first use, in the running loop),
    each fetch bounded in time and size."""

    def __init__(self, *, timeout: float = 5.0, max_bytes: int = 1024 * 1024) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, uri: str) -> JwksDocument:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        try:
            async with self._session.get(
                uri, headers={"Accept": "application/jwk-set+json, application/json"}
            ) as response:
                if response.status != 200:
                    raise JwksFetchError(f"HTTP {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise JwksFetchError(f"larger than {self._max_bytes} bytes")
                return JwksDocument(bytes(body), response.headers.get("Cache-Control"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise JwksFetchError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None] | None"]


class JwksCache:
    """``jwt.KeySource`` for one JWKS URI."""

    def __init__(
        self,
        uri: str,
        fetcher: JwksFetcher,
        spawn: Spawn,
        *,
        policy: JwksPolicy,
        clock: Clock,
    ) -> None:
        """``spawn`` starts a fetch as a task its owner cancels on close (None: not now)."""
        self.uri = uri
        self._fetcher = fetcher
        self._spawn = spawn
        self._policy = policy
        self._clock = clock
        self.generation = 0
        self.loaded = False
        self.fetches = 0
        self.last_error: str | None = None
        self._by_kid: dict[str, tuple[Jwk, ...]] = {}
        self._all: tuple[Jwk, ...] = ()
        self._fingerprint: frozenset[str] = frozenset()
        self._expires = -math.inf
        self._last_start = -math.inf
        self._retry_at = -math.inf
        self._failures = 0
        self._inflight: asyncio.Task[None] | None = None

    # -- KeySource ---------------------------------------------------------------------------
    def keys_for(self, kid: str | None, alg: str) -> Sequence[VerifyKey] | None:
        now = self._clock.monotonic()
        if now >= self._expires and self._inflight is None and now >= self._retry_at:
            self._start(now)  # stale (or never loaded): refresh behind the cached keys
        if not self.loaded:
            return None
        if kid is None:
            entries = self._all
        else:
            found = self._by_kid.get(kid)
            if found is None:
                return None
            entries = found
        return tuple(jwk.key for jwk in entries if jwk.fits(alg))

    async def refresh(self, kid: str | None) -> None:
        if self._inflight is None:
            now = self._clock.monotonic()
            if now < self._retry_at:
                return  # failing: back off
            if self.loaded and now - self._last_start < self._policy.refetch_interval:
                return  # fetched lately: an unknown kid now is no reason for another
            self._start(now)
        task = self._inflight
        if task is not None:
            # Shielded: a request that gives up does not cancel the fetch others wait for.
            await asyncio.shield(task)

    # -- fetching ----------------------------------------------------------------------------
    def prefetch(self) -> None:
        """Start the first fetch now, when there is a running loop and nothing loaded yet."""
        if self.loaded or self._inflight is not None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving yet: the first request that needs a key fetches
        self._start(self._clock.monotonic())

    def _start(self, now: float) -> None:
        task = self._spawn(self._fetch())
        if task is not None:
            self._last_start = now
            self._inflight = task

    async def _fetch(self) -> None:
        self.fetches += 1
        try:
            document = await self._fetcher.fetch(self.uri)
            keys, fingerprint = parse_jwks(document.body, self._policy.max_keys)
        except (JwksFetchError, ValueError) as exc:
            self._failed(str(exc))
            return
        except Exception as exc:  # a bug must not leave waiters hanging or the keys unusable
            log.exception("JWKS %s: fetch failed", self.uri)
            self._failed(type(exc).__name__)
            return
        finally:
            self._inflight = None
        self._install(keys, fingerprint, ttl_of(document.cache_control, self._policy))

    def _failed(self, reason: str) -> None:
        self._failures += 1
        policy = self._policy
        backoff = min(policy.retry_max, policy.retry_min * 2 ** (self._failures - 1))
        self._retry_at = self._clock.monotonic() + backoff
        self.last_error = reason
        log.warning(
            "JWKS %s: fetch failed (%s); %s, next try in %gs at the earliest",
            self.uri,
            reason,
            f"keeping {len(self._all)} cached keys" if self.loaded else "no keys yet",
            backoff,
        )

    def _install(self, keys: tuple[Jwk, ...], fingerprint: frozenset[str], ttl: float) -> None:
        self._failures = 0
        self._retry_at = -math.inf
        self.last_error = None
        self._expires = self._clock.monotonic() + ttl
        if self.loaded and fingerprint == self._fingerprint:
            return
        by_kid: dict[str, list[Jwk]] = {}
        for jwk in keys:
            if jwk.kid is not None:
                by_kid.setdefault(jwk.kid, []).append(jwk)
        self._by_kid = {kid: tuple(entries) for kid, entries in by_kid.items()}
        self._all = keys
        self._fingerprint = fingerprint
        self.generation += 1
        self.loaded = True
        log.info(
            "JWKS %s: %d keys (kids %s), fresh for %gs",
            self.uri,
            len(keys),
            ", ".join(sorted(self._by_kid)) or "none",
            ttl,
        )


class JwksCaches:
    """The running gateway's JWKS caches, one per URI, and the tasks fetching them."""

    def __init__(
        self,
        fetcher: JwksFetcher | None = None,
        *,
        policy: JwksPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.policy = policy or JwksPolicy()
        self._fetcher = fetcher or HttpJwksFetcher(
            timeout=self.policy.timeout, max_bytes=self.policy.max_bytes
        )
        self._clock = clock or SystemClock()
        self._caches: dict[str, JwksCache] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def cache(self, uri: str) -> JwksCache:
        """The cache of ``uri`` (made on first use; its first fetch starts now when the loop
        runs)."""
        cache = self._caches.get(uri)
        if cache is None:
            cache = self._caches[uri] = JwksCache(
                uri, self._fetcher, self._spawn, policy=self.policy, clock=self._clock
            )
        cache.prefetch()
        return cache

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        if self._closed:
            work.close()
            return None
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:
            work.close()
            return None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Cancel the fetches in flight and close the HTTP session."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._fetcher.close()
