"""RequestRateLimiter end to end with in-process buckets, and GATEWAY_MAX_INFLIGHT: a real
gateway in front of a real upstream, requests over real connections."""

from __future__ import annotations

import asyncio
import socket
import struct

import aiohttp

from tests.conftest import MakeGateway
from tests.support.upstream import Upstream

ROUTES = """\
routes:
  - id: limited
    uri: {up}
    predicates:
      - Path=/limited/**
    filters:
      - name: RequestRateLimiter
        args:
          redis-rate-limiter.replenishRate: 5
          redis-rate-limiter.burstCapacity: 10
          redis-rate-limiter.requestedTokens: 1
          key-resolver: header:X-Api-Key
  - id: open-door
    uri: {up}
    predicates:
      - Path=/open/**
    filters:
      - name: RequestRateLimiter
        args:
          redis-rate-limiter.replenishRate: 1
          key-resolver: query:user
          deny-empty-key: false
  - id: free
    uri: {up}
    predicates:
      - Path=/**
"""


async def _get(
    session: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[int, dict[str, str]]:
    async with session.get(url, headers=headers) as response:
        await response.read()
        return response.status, dict(response.headers)


async def test_a_burst_of_40_admits_the_burst_capacity(
    make_gateway: MakeGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(ROUTES.format(up=upstream.url))
    url = f"{gw.url}/limited/x"
    results = await asyncio.gather(*(_get(session, url, **{"X-Api-Key": "k1"}) for _ in range(40)))
    statuses = [status for status, _ in results]
    # 10 from the full bucket, perhaps one more refilled while the burst ran (5/s).
    assert 10 <= statuses.count(200) <= 11, statuses
    assert set(statuses) == {200, 429}
    ok = next(headers for status, headers in results if status == 200)
    assert ok["X-RateLimit-Replenish-Rate"] == "5"
    assert ok["X-RateLimit-Burst-Capacity"] == "10"
    assert ok["X-RateLimit-Requested-Tokens"] == "1"
    assert 0 <= int(ok["X-RateLimit-Remaining"]) <= 9
    assert ok["RateLimit-Policy"] == '"default";q=10;w=2'
    assert ok["RateLimit"].startswith('"default";r=')
    refused = next(headers for status, headers in results if status == 429)
    assert refused["Retry-After"] == "1"
    assert refused["X-RateLimit-Remaining"] == "0"
    assert refused["Content-Type"] == "application/json"
    # Another key has its own bucket; a route without the filter is not limited.
    assert (await _get(session, url, **{"X-Api-Key": "k2"}))[0] == 200
    free = [await _get(session, f"{gw.url}/other") for _ in range(20)]
    assert {status for status, _ in free} == {200}
    assert "X-RateLimit-Remaining" not in free[0][1]


async def test_empty_keys_are_denied_unless_deny_empty_key_is_false(
    make_gateway: MakeGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(ROUTES.format(up=upstream.url))
    status, headers = await _get(session, f"{gw.url}/limited/x")
    assert status == 403
    assert "X-RateLimit-Remaining" not in headers
    passed = [(await _get(session, f"{gw.url}/open/x"))[0] for _ in range(5)]
    assert passed == [200] * 5  # no key, let through unlimited
    keyed = [(await _get(session, f"{gw.url}/open/x?user=ann"))[0] for _ in range(2)]
    assert keyed == [200, 429]


async def test_decisions_are_counted_in_the_metrics(
    make_gateway: MakeGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(ROUTES.format(up=upstream.url))
    for _ in range(12):
        await _get(session, f"{gw.url}/limited/x", **{"X-Api-Key": "m"})
    await _get(session, f"{gw.url}/limited/x")
    async with session.get(f"{gw.management_url}/actuator/prometheus") as response:
        text = await response.text()
    lines = [
        line for line in text.splitlines() if line.startswith("meshgate_rate_limit_requests_total{")
    ]
    counts = {line.split("{")[1].split("}")[0]: float(line.split()[-1]) for line in lines}
    allowed = counts['outcome="allowed",route="limited"']
    denied = counts['outcome="denied",route="limited"']
    assert allowed + denied == 12
    assert allowed >= 10
    assert counts['outcome="empty_key",route="limited"'] == 1


async def test_spring_properties_set_the_defaults_and_header_names(
    make_gateway: MakeGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    document = f"""\
spring:
  cloud:
    gateway:
      server:
        webflux:
          filter:
            request-rate-limiter:
              deny-empty-key: false
          redis-rate-limiter:
            remaining-header: X-Left
          routes:
            - id: limited
              uri: {upstream.url}
              predicates:
                - Path=/**
              filters:
                - name: RequestRateLimiter
                  args:
                    redis-rate-limiter.replenish-rate: 1
                    key-resolver: header:X-Api-Key
"""
    gw = await make_gateway(document)
    assert (await _get(session, f"{gw.url}/x"))[0] == 200  # no key, but not denied
    status, headers = await _get(session, f"{gw.url}/x", **{"X-Api-Key": "a"})
    assert status == 200
    assert headers["X-Left"] == "0"
    assert "X-RateLimit-Remaining" not in headers


async def test_max_inflight_sheds_with_503_and_retry_after(
    make_gateway: MakeGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(ROUTES.format(up=upstream.url), max_inflight=2)
    slow = [asyncio.create_task(_get(session, f"{gw.url}/delay/0.5")) for _ in range(2)]
    await asyncio.sleep(0.2)  # both are in flight at the upstream
    status, headers = await _get(session, f"{gw.url}/other")
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert headers["Content-Type"] == "application/json"
    assert [status for status, _ in await asyncio.gather(*slow)] == [200, 200]
    # Their slots were given back: the next request goes through.
    assert (await _get(session, f"{gw.url}/other"))[0] == 200
    async with session.get(f"{gw.management_url}/actuator/prometheus") as response:
        text = await response.text()
    assert "meshgate_max_inflight_rejected_total 1.0" in text


async def test_max_inflight_off_by_default(
    make_gateway: MakeGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(ROUTES.format(up=upstream.url))
    results = await asyncio.gather(*(_get(session, f"{gw.url}/delay/0.2") for _ in range(20)))
    assert {status for status, _ in results} == {200}


async def test_a_client_that_leaves_gives_its_place_back(
    make_gateway: MakeGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(ROUTES.format(up=upstream.url), max_inflight=1)
    _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(b"GET /delay/1 HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.2)
    assert (await _get(session, f"{gw.url}/other"))[0] == 503  # the slow one holds the place
    # Reset (not a FIN, which asks for the answer still): abandoned, no longer in flight.
    sock = writer.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
    await asyncio.sleep(0.2)
    assert (await _get(session, f"{gw.url}/other"))[0] == 200
