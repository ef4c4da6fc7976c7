"""RequestRateLimiter with its buckets in a real Redis: one limit across gateway processes,
and what happens when Redis dies, stalls or comes back."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import aiohttp
import pytest

from resilience.ratelimit.policy import BucketPolicy
from resilience.ratelimit.redis_backend import RedisRateLimiters
from tests.conftest import MakeGateway
from tests.support.gateway import spawn_gateway
from tests.support.redis import RedisServer, redis_server  # noqa: F401 (the fixture)
from tests.support.upstream import Upstream

ROUTES = """\
routes:
  - id: limited
    uri: {up}
    predicates:
      - Path=/**
    filters:
      - name: RequestRateLimiter
        args:
          redis-rate-limiter.replenishRate: {rate}
          redis-rate-limiter.burstCapacity: {burst}
          key-resolver: header:X-Api-Key
"""


async def _get(
    session: aiohttp.ClientSession, url: str, key: str = "k1"
) -> tuple[int, dict[str, str]]:
    async with session.get(url, headers={"X-Api-Key": key}) as response:
        await response.read()
        return response.status, dict(response.headers)


_ERRORS = 'meshgate_rate_limit_backend_errors_total{reason="connection"}'


async def _prometheus(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(f"{url}/actuator/prometheus") as response:
        return await response.text()


async def test_a_burst_is_limited_in_redis_with_headers_and_expiring_keys(
    make_gateway: MakeGateway,
    upstream: Upstream,
    session: aiohttp.ClientSession,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    gw = await make_gateway(
        ROUTES.format(up=upstream.url, rate=5, burst=10), redis_url=redis_server.url
    )
    results = await asyncio.gather(*(_get(session, f"{gw.url}/x") for _ in range(40)))
    statuses = [status for status, _ in results]
    assert 10 <= statuses.count(200) <= 11, statuses
    refused = next(headers for status, headers in results if status == 429)
    assert refused["Retry-After"] == "1"
    assert refused["X-RateLimit-Burst-Capacity"] == "10"
    assert refused["RateLimit"] == '"default";r=0;t=1'
    assert (await _get(session, f"{gw.url}/x", key="k2"))[0] == 200
    # One hash per (route, key), expiring after twice its fill time (2 s here).
    ttl = int(redis_server.command_line("PTTL", "meshgate:rate:7:limited:k1")[1:].strip())
    assert 0 < ttl <= 4000
    fields = redis_server.command_line("HGETALL", "meshgate:rate:7:limited:k1")
    assert b"tokens" in fields
    assert b"stamp" in fields


@pytest.mark.slow
async def test_two_gateway_processes_share_one_limit(
    tmp_path: Path,
    upstream: Upstream,
    session: aiohttp.ClientSession,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    routes = tmp_path / "routes.yml"
    rate, burst = 5, 10
    routes.write_text(ROUTES.format(up=upstream.url, rate=rate, burst=burst))
    env = {"GATEWAY_REDIS_URL": redis_server.url, "GATEWAY_ACCESS_LOG": "false"}
    first = spawn_gateway(routes, tmp_path, **env)
    second = spawn_gateway(routes, tmp_path, **env)
    try:
        admitted = 0
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            batch = [_get(session, f"{gw.url}/x") for gw in (first, second) for _ in range(5)]
            admitted += [status for status, _ in await asyncio.gather(*batch)].count(200)
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        first.stop()
        second.stop()
    # Together no more than one bucket's worth (each alone would admit about as much again).
    assert burst <= admitted <= burst + rate * elapsed + 1, (admitted, elapsed)


async def test_a_killed_redis_fails_open_and_limiting_resumes_when_it_is_back(
    make_gateway: MakeGateway,
    upstream: Upstream,
    session: aiohttp.ClientSession,
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = await make_gateway(
        ROUTES.format(up=upstream.url, rate=1, burst=2), redis_url=redis_server.url
    )
    url = f"{gw.url}/x"
    assert [(await _get(session, url))[0] for _ in range(3)] == [200, 200, 429]
    redis_server.kill()
    caplog.set_level(logging.WARNING, logger="meshgate.ratelimit")
    down = [await _get(session, url) for _ in range(20)]
    await asyncio.sleep(0.6)  # past the cool-down: Redis is asked (and fails) again
    down += [await _get(session, url) for _ in range(5)]
    assert {status for status, _ in down} == {200}  # fail open, as SCG
    assert down[0][1]["X-RateLimit-Remaining"] == "-1"
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]  # one per 10 s
    assert "failing open" in failures[0].getMessage()
    redis_server.start()  # the same port; an empty Redis, so the script is loaded again
    deadline = time.monotonic() + 5
    statuses: list[int] = []
    while time.monotonic() < deadline and statuses[-3:] != [200, 200, 429]:
        statuses.append((await _get(session, url))[0])
        await asyncio.sleep(0.02)
    assert statuses[-3:] == [200, 200, 429], statuses  # a full bucket again, then limited
    text = await _prometheus(session, gw.management_url)
    errors = [line for line in text.splitlines() if line.startswith(_ERRORS)]
    assert errors, text
    assert float(errors[0].split()[-1]) >= 2  # counted every time, logged once
    assert 'meshgate_rate_limit_requests_total{outcome="backend_error",route="limited"}' in text


async def test_a_stalled_redis_costs_at_most_the_budget_per_request(
    make_gateway: MakeGateway,
    upstream: Upstream,
    session: aiohttp.ClientSession,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    gw = await make_gateway(
        ROUTES.format(up=upstream.url, rate=1, burst=2), redis_url=redis_server.url
    )
    url = f"{gw.url}/x"
    assert [(await _get(session, url))[0] for _ in range(3)] == [200, 200, 429]
    redis_server.pause()  # accepts connections, answers nothing
    try:
        for _ in range(15):
            began = time.monotonic()
            status, _ = await _get(session, url)
            assert status == 200  # fail open
            assert time.monotonic() - began < 0.5  # the 50 ms budget, not Redis's silence
            await asyncio.sleep(0.05)
    finally:
        redis_server.resume()
    deadline = time.monotonic() + 5
    status = 200
    while time.monotonic() < deadline and status != 429:
        status = (await _get(session, url))[0]
        await asyncio.sleep(0.02)
    assert status == 429  # limiting again, without a restart


async def test_fail_closed_answers_503(
    make_gateway: MakeGateway,
    upstream: Upstream,
    session: aiohttp.ClientSession,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    gw = await make_gateway(
        ROUTES.format(up=upstream.url, rate=1, burst=2),
        redis_url=redis_server.url,
        rate_limit_fail_closed=True,
    )
    url = f"{gw.url}/x"
    assert (await _get(session, url))[0] == 200
    redis_server.kill()
    status, headers = await _get(session, url)
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert headers["X-RateLimit-Remaining"] == "-1"
    assert upstream  # the upstream was never asked for the refused one
    redis_server.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and status == 503:
        status = (await _get(session, url))[0]
        await asyncio.sleep(0.05)
    assert status == 200


async def test_a_plain_service_uses_the_redis_limiter_and_survives_a_script_flush(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    limiters = RedisRateLimiters(redis_server.url)
    limiter = limiters.limiter("svc", BucketPolicy(replenish_rate=1, burst_capacity=2))
    try:
        assert [(await limiter.acquire("u")).allowed for _ in range(3)] == [True, True, False]
        redis_server.command_line("SCRIPT", "FLUSH")  # as after a Redis restart: NOSCRIPT
        decision = await limiter.acquire("u")
        assert decision.error is None
        assert not decision.allowed
        # Sub-second refill: half a second gives half a token back.
        await asyncio.sleep(0.5)
        assert (await limiter.acquire("u")).remaining == pytest.approx(0.5, abs=0.2)
        # Decisions asked together share a round trip, each still its own bucket's.
        together = await asyncio.gather(*(limiter.acquire(f"g{i % 3}") for i in range(9)))
        assert [d.allowed for d in together] == [True] * 6 + [False] * 3
        # A key that is not a bucket fails that decision alone, open, without a cool-down.
        redis_server.command_line("SET", "meshgate:rate:3:svc:bad", "x")
        broken, fine = await asyncio.gather(limiter.acquire("bad"), limiter.acquire("ok"))
        assert (broken.allowed, broken.error) == (True, "error")
        assert (fine.allowed, fine.error) == (True, None)
        assert (await limiter.acquire("ok")).error is None
    finally:
        await limiters.close()
