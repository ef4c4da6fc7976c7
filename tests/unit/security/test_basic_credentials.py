"""Basic credentials: the header's parse, bcrypt on the pool's threads (bounded), the cache of
verified credentials (successes only, TTL, LRU), one check for concurrent identical requests,
and unknown users checked against the dummy hash."""

from __future__ import annotations

import asyncio
import base64

import bcrypt
import pytest

from gateway.security.basic_credentials import BasicAuthenticator, PoolBusy, basic_credentials
from gateway.security.bcrypt_pool import BcryptPool
from gateway.security.htpasswd import Htpasswd, parse_htpasswd
from gateway.security.verified_cache import VerifiedCache, credentials_key
from tests.support.clock import FakeClock


def basic(value: bytes) -> str:
    return "Basic " + base64.b64encode(value).decode()


def users(**passwords: str) -> Htpasswd:
    lines = [
        f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()}"
        for user, pw in passwords.items()
    ]
    return parse_htpasswd("\n".join(lines), "htpasswd")


class CountingPool(BcryptPool):
    """The real pool, recording the hashes it was asked to check against."""

    def __init__(self, threads: int = 2, max_pending: int = 64) -> None:
        super().__init__(threads, max_pending)
        self.checked: list[bytes] = []

    def check(self, password: bytes, hashed: bytes) -> asyncio.Future[bool] | None:
        future = super().check(password, hashed)
        if future is not None:
            self.checked.append(hashed)
        return future


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (basic(b"alice:pw"), b"alice:pw"),
        ("basic " + base64.b64encode(b"a:b:c").decode(), b"a:b:c"),  # the scheme is any case
        (basic(b":pw"), b":pw"),
        (basic(b"no-colon"), None),
        ("Basic not base64!", None),
        ("Basic YWxpY2U6cHc", None),  # padding missing
        ("Bearer " + base64.b64encode(b"alice:pw").decode(), None),
        ("Basic", None),
        ("", None),
    ],
)
def test_the_header_value(value: str, expected: bytes | None) -> None:
    assert basic_credentials(value) == expected


async def test_right_password_verifies_once_then_comes_from_the_cache() -> None:
    clock = FakeClock()
    pool = CountingPool()
    auth = BasicAuthenticator(users(alice="s3cret"), pool, VerifiedCache(clock.monotonic))
    key, cached = auth.cached(b"alice:s3cret")
    assert cached is None
    assert await auth.verify(key, b"alice:s3cret") == "alice"
    assert len(pool.checked) == 1
    assert auth.cached(b"alice:s3cret") == (key, "alice")  # no bcrypt for the next requests
    clock.advance(301)  # past the TTL: bcrypt again
    assert auth.cached(b"alice:s3cret")[1] is None
    pool.close()


async def test_wrong_passwords_and_unknown_users_are_never_cached_and_cost_a_check() -> None:
    htpasswd = users(alice="s3cret")
    pool = CountingPool()
    auth = BasicAuthenticator(htpasswd, pool, VerifiedCache(FakeClock().monotonic))
    for credentials in (b"alice:wrong", b"mallory:s3cret", b"\xff\xfe:s3cret", b"alice:"):
        key, cached = auth.cached(credentials)
        assert cached is None
        assert await auth.verify(key, credentials) is None
        assert auth.cached(credentials)[1] is None
    alice, _ = htpasswd.hash_of("alice")
    # Every refusal paid one bcrypt check: the user's hash, or the dummy of the same cost.
    assert pool.checked == [alice, htpasswd.dummy, htpasswd.dummy, alice]
    pool.close()


async def test_concurrent_requests_with_the_same_credentials_share_one_check() -> None:
    pool = CountingPool()
    auth = BasicAuthenticator(users(alice="s3cret"), pool, VerifiedCache(FakeClock().monotonic))
    key, _ = auth.cached(b"alice:s3cret")
    results = await asyncio.gather(*(auth.verify(key, b"alice:s3cret") for _ in range(8)))
    assert results == ["alice"] * 8
    assert len(pool.checked) == 1
    pool.close()


async def test_a_full_pool_refuses_at_once() -> None:
    pool = BcryptPool(threads=1, max_pending=2)
    auth = BasicAuthenticator(users(alice="pw"), pool, VerifiedCache(FakeClock().monotonic))
    first = asyncio.ensure_future(auth.verify(credentials_key(b"alice:a"), b"alice:a"))
    second = asyncio.ensure_future(auth.verify(credentials_key(b"alice:b"), b"alice:b"))
    await asyncio.sleep(0)
    assert pool.pending == 2
    with pytest.raises(PoolBusy):
        await auth.verify(credentials_key(b"alice:c"), b"alice:c")
    assert await first is None and await second is None
    assert pool.pending == 0
    assert await auth.verify(credentials_key(b"alice:pw"), b"alice:pw") == "alice"
    pool.close()
    assert pool.check(b"pw", b"$2b$04$" + b"." * 53) is None  # closed: nothing accepted


async def test_a_password_longer_than_72_bytes_is_checked_as_htpasswd_hashed_it() -> None:
    long = b"p" * 80
    hashed = bcrypt.hashpw(long[:72], bcrypt.gensalt(4))
    pool = BcryptPool()
    check = pool.check(long, hashed)
    assert check is not None and await check
    unreadable = pool.check(b"pw", b"$2b$04$not-a-hash")
    assert unreadable is not None and not await unreadable
    pool.close()


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    clock = FakeClock()
    cache = VerifiedCache(clock.monotonic, ttl=10, max_entries=2)
    cache.put(b"a", "alice")
    cache.put(b"b", "bob")
    assert cache.get(b"a") == "alice"  # a is now the most recent
    cache.put(b"c", "carol")
    assert cache.get(b"b") is None
    assert cache.get(b"a") == "alice"
    assert len(cache) == 2
    clock.advance(10)  # the TTL counts from the verification, not from the last use
    assert cache.get(b"a") is None
    assert len(cache) == 1
