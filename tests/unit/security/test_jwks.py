"""The JWKS cache (gateway.security.jwks) with a fake fetcher and a fake clock: freshness from
Cache-Control within bounds, one refetch per interval for unknown kids (not one per kid),
shared fetches, cached keys through an outage, and what a JWK set may contribute."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.security.jwks import (
    JwksCaches,
    JwksDocument,
    JwksFetchError,
    JwksPolicy,
    parse_jwk,
    parse_jwks,
    ttl_of,
)
from gateway.security.jwt import JwtPolicy, JwtVerifier, TokenRejected
from tests.support.clock import FakeClock
from tests.support.jwt_keys import Claims, SigningKey, jwks

URI = "https://idp.test/jwks"
K1 = SigningKey.rsa("k1")
K2 = SigningKey.rsa("k2")
E1 = SigningKey.ec("e1")


class FakeFetcher:
    """``JwksFetcher``: serves ``document`` (or fails), counting fetches; ``hold`` keeps a
    fetch waiting until set."""

    def __init__(self, document: dict[str, Any], cache_control: str | None = None) -> None:
        self.document = document
        self.cache_control = cache_control
        self.failing = False
        self.calls = 0
        self.closed = False
        self.hold: asyncio.Event | None = None

    async def fetch(self, uri: str) -> JwksDocument:
        self.calls += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.failing:
            raise JwksFetchError("connection refused")
        return JwksDocument(json.dumps(self.document).encode(), self.cache_control)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def caches(fetcher: FakeFetcher, clock: FakeClock, **policy: Any) -> JwksCaches:
    return JwksCaches(fetcher, policy=JwksPolicy(**policy), clock=clock)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# -- freshness -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "ttl"),
    [
        (None, 3600.0),
        ("", 3600.0),
        ("public, max-age=600", 600.0),
        ("max-age=60", 300.0),  # below the lower bound
        ("max-age=9999999", 86400.0),  # above the upper bound
        ('max-age="1200"', 1200.0),
        ("no-store", 300.0),
        ("no-cache, max-age=7200", 300.0),
        ("s-maxage=7200", 3600.0),
    ],
)
def test_freshness_follows_cache_control_within_bounds(header: str | None, ttl: float) -> None:
    assert ttl_of(header, JwksPolicy()) == ttl


# -- the document ----------------------------------------------------------------------------------
def test_only_signing_keys_are_taken_from_a_jwk_set() -> None:
    short = SigningKey.rsa("short", bits=1024)
    document = {
        "keys": [
            K1.jwk(),
            E1.jwk(),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            K2.jwk(use="enc"),
            K2.jwk(kid="wrapping", alg="RSA-OAEP"),
            K2.jwk(kid="ops", key_ops=["encrypt"]),
            short.jwk(),
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kty": "XYZ", "kid": "odd"},
            "not an object",
        ]
    }
    keys, _ = parse_jwks(json.dumps(document).encode())
    assert [k.kid for k in keys] == ["k1", "e1"]


def test_a_jwk_with_alg_verifies_only_that_algorithm() -> None:
    jwk = parse_jwk(K1.jwk(alg="RS256"))
    assert jwk is not None
    assert jwk.fits("RS256")
    assert not jwk.fits("PS256")
    assert not jwk.fits("ES256")
    free = parse_jwk(K1.jwk())
    assert free is not None and free.fits("PS256")


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"keys": {}}', b'{"keys": []}', b'{"keys": [{"kty": "oct"}]}']
)
def test_a_document_without_usable_keys_is_an_error(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"JSON|JWK set|usable"):
        parse_jwks(body)


def test_the_fingerprint_changes_with_the_key_set() -> None:
    _, one = parse_jwks(json.dumps(jwks(K1)).encode())
    _, same = parse_jwks(json.dumps({"keys": [K1.jwk()]}).encode())
    _, two = parse_jwks(json.dumps(jwks(K1, K2)).encode())
    assert one == same
    assert one != two


# -- fetching --------------------------------------------------------------------------------------
async def test_the_first_fetch_starts_when_the_route_is_built(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1))
    cache = caches(fetcher, clock).cache(URI)
    await settle()
    assert fetcher.calls == 1
    assert cache.loaded
    assert len(cache.keys_for("k1", "RS256") or ()) == 1
    assert cache.keys_for("k1", "ES256") == ()
    assert len(cache.keys_for(None, "RS256") or ()) == 1


def test_without_a_running_loop_nothing_is_fetched(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1))
    cache = caches(fetcher, clock).cache(URI)
    assert fetcher.calls == 0
    assert not cache.loaded


async def test_one_cache_per_uri(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1))
    registry = caches(fetcher, clock)
    assert registry.cache(URI) is registry.cache(URI)
    await settle()
    assert fetcher.calls == 1


async def test_unknown_kids_refetch_once_per_interval_not_per_kid(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1))
    cache = caches(fetcher, clock, refetch_interval=30.0).cache(URI)
    await settle()
    for i in range(20):
        assert cache.keys_for(f"random-{i}", "RS256") is None
        await cache.refresh(f"random-{i}")
    assert fetcher.calls == 1  # the start's fetch was under 30 s ago
    clock.advance(30)
    for i in range(20):
        await cache.refresh(f"random-again-{i}")
    assert fetcher.calls == 2


async def test_a_rotated_kid_is_found_by_the_refetch(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1))
    cache = caches(fetcher, clock, refetch_interval=30.0).cache(URI)
    await settle()
    generation = cache.generation
    fetcher.document = jwks(K2)
    await cache.refresh("k2")
    assert cache.keys_for("k2", "RS256") is None  # too soon after the last fetch
    clock.advance(31)
    await cache.refresh("k2")
    assert len(cache.keys_for("k2", "RS256") or ()) == 1
    assert cache.keys_for("k1", "RS256") is None  # rotated out
    assert cache.generation == generation + 1


async def test_concurrent_requests_share_one_fetch(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1))
    fetcher.hold = asyncio.Event()
    cache = caches(fetcher, clock).cache(URI)
    waiting = [asyncio.create_task(cache.refresh("k1")) for _ in range(10)]
    await settle()
    fetcher.hold.set()
    await asyncio.gather(*waiting)
    assert fetcher.calls == 1
    assert cache.keys_for("k1", "RS256")


async def test_a_waiter_that_gives_up_does_not_cancel_the_fetch(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1))
    fetcher.hold = asyncio.Event()
    cache = caches(fetcher, clock).cache(URI)
    impatient = asyncio.create_task(cache.refresh("k1"))
    await settle()
    impatient.cancel()
    fetcher.hold.set()
    await settle()
    assert cache.loaded


async def test_cached_keys_keep_working_through_an_outage(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1), cache_control="max-age=600")
    cache = caches(fetcher, clock, retry_min=1.0, retry_max=4.0).cache(URI)
    await settle()
    generation = cache.generation
    fetcher.failing = True
    clock.advance(600)  # stale: the next lookup refreshes behind the cached keys
    assert cache.keys_for("k1", "RS256")
    await settle()
    assert fetcher.calls == 2
    assert cache.last_error == "connection refused"
    assert cache.keys_for("k1", "RS256")
    assert cache.generation == generation
    await settle()
    assert fetcher.calls == 2  # backing off
    for wait in (1.0, 2.0, 4.0, 4.0):
        clock.advance(wait - 0.01)
        cache.keys_for("k1", "RS256")
        await settle()
        calls = fetcher.calls
        clock.advance(0.01)
        cache.keys_for("k1", "RS256")
        await settle()
        assert fetcher.calls == calls + 1
    fetcher.failing = False
    clock.advance(4)
    cache.keys_for("k1", "RS256")
    await settle()
    assert cache.last_error is None
    assert cache.generation == generation  # the same keys: nothing to re-verify


async def test_no_keys_yet_and_the_provider_down(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1))
    fetcher.failing = True
    cache = caches(fetcher, clock, retry_min=1.0).cache(URI)
    await cache.refresh("k1")
    assert cache.keys_for("k1", "RS256") is None
    await cache.refresh("k1")
    assert fetcher.calls == 1  # backing off
    fetcher.failing = False
    clock.advance(1)
    await cache.refresh("k1")
    assert cache.keys_for("k1", "RS256")


async def test_close_cancels_the_fetch_in_flight(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1))
    fetcher.hold = asyncio.Event()
    registry = caches(fetcher, clock)
    cache = registry.cache(URI)
    await settle()
    await registry.close()
    assert fetcher.closed
    assert not cache.loaded
    clock.advance(100)
    assert cache.keys_for("k1", "RS256") is None  # closed: no new fetch
    await settle()
    assert fetcher.calls == 1


async def test_tokens_through_a_jwks_cache(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks(K1))
    cache = caches(fetcher, clock, refetch_interval=30.0).cache(URI)
    policy = JwtPolicy(issuer="https://idp.test/", audiences=frozenset({"orders"}))
    check = JwtVerifier(policy, cache, clock.time)
    claims = Claims(clock.time())
    assert (await check.verify(K1.sign(claims.make()))).subject == "alice"
    fetcher.document = jwks(K1, K2)
    clock.advance(30)
    assert (await check.verify(K2.sign(claims.make(sub="bob")))).subject == "bob"
    with pytest.raises(TokenRejected):
        await check.verify(SigningKey.rsa("k3").sign(claims.make()))
    assert fetcher.calls == 2
