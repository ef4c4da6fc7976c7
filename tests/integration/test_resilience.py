"""Retry, outlier ejection, circuit breaking, retry budgets, body replay, hedging, bulkheads and
hash balancing through the gateway, against real upstreams that misbehave on command."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.chaos import ChaosUpstream, start_chaos
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.upstream import start_upstream


def pool_yaml(upstreams: list[ChaosUpstream]) -> str:
    lines = ["services:", "  pool:"]
    for u in upstreams:
        lines.append(f"    - {{host: 127.0.0.1, port: {u.port}, id: {u.name}}}")
    return "\n".join(lines) + "\n"


async def gateway_for(tmp_path: Path, text: str, **settings: Any) -> RunningGateway:
    config = tmp_path / "routes.yml"
    config.write_text(textwrap.dedent(text))
    return await start_gateway(config, **settings)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
        yield s


@pytest.fixture
async def trio() -> AsyncIterator[list[ChaosUpstream]]:
    upstreams = await start_chaos("a", "b", "c")
    yield upstreams
    for upstream in upstreams:
        await upstream.stop()


async def fetch(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> int:
    async with session.request(method, url, **kw) as response:
        await response.read()
        return response.status


async def test_an_instance_killed_mid_run_costs_no_client_errors_and_is_ejected_then_readmitted(
    tmp_path: Path, trio: list[ChaosUpstream], session: aiohttp.ClientSession
) -> None:
    routes = pool_yaml(trio) + textwrap.dedent(
        """
        routes:
          - id: retry
            uri: lb://pool
            predicates: [Path=/r/**]
            filters: [Retry=3]
        """
    )
    gw = await gateway_for(tmp_path, routes, outlier_base_ejection="1s")
    victim = trio[2]
    statuses: list[int] = []
    try:
        url = f"{gw.url}/r/x"
        for batch in range(50):  # 1,000 requests, 20 at a time
            if batch == 15:
                await victim.stop()  # mid-run: connections refused from now on
            statuses += await asyncio.gather(*(fetch(session, "GET", url) for _ in range(20)))
        assert len(statuses) == 1000
        assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
        outlier = gw.gateway.runtimes.get("pool").outlier
        assert "c" in outlier.ejected()
        async with session.get(f"{gw.management_url}/actuator/gateway/services") as response:
            [pool] = [s for s in await response.json() if s["service"] == "pool"]
        assert pool["outlier"]["c"]["ejection_count"] >= 1
        assert pool["retryBudget"]["retries"] >= 1

        # Back on the same port: re-admitted by itself once its ejection time is up.
        await victim.start()
        before = victim.received
        for _ in range(60):
            await fetch(session, "GET", url)
            if victim.received > before:
                break
            await asyncio.sleep(0.05)
        assert victim.received > before, "the instance was never re-admitted"
    finally:
        await gw.gateway.stop()


async def test_breaker_opens_serves_the_fallback_stops_calling_and_closes_after_recovery(
    tmp_path: Path, trio: list[ChaosUpstream], session: aiohttp.ClientSession
) -> None:
    fallback = await start_upstream("fallback")
    for upstream in trio:
        upstream.mode = "503"
    routes = pool_yaml(trio) + textwrap.dedent(
        f"""
        routes:
          - id: guarded
            uri: lb://pool
            predicates: [Path=/g/**]
            metadata: {{breaker-fail-max: 3, breaker-reset-timeout: 400}}
            filters:
              - name: CircuitBreaker
                args: {{name: pool-cb, fallbackUri: "forward:/fallback", statusCodes: [503]}}
          - id: fallback
            uri: {fallback.url}
            predicates: [Path=/fallback]
            filters: [FallbackHeaders]
        """
    )
    gw = await gateway_for(tmp_path, routes)
    breaker = gw.gateway.runtimes.breakers.get("pool-cb")
    try:
        url = f"{gw.url}/g/x"
        for _ in range(3):
            async with session.get(url) as response:
                assert response.status == 200
                assert response.headers["X-Upstream"] == "fallback"
        assert breaker.state == "open"
        reached = sum(u.received for u in trio)
        assert reached == 3
        async with session.get(f"{gw.management_url}/actuator/gateway/services") as response:
            [pool] = [s for s in await response.json() if s["service"] == "pool"]
        assert pool["circuitBreakers"]["pool-cb"]["state"] == "open"
        assert pool["retryBudget"]["requests"] == 0  # no Retry on this route

        for _ in range(10):  # open: straight to the fallback, the pool sees nothing
            async with session.get(url) as response:
                echoed = await response.json()
                assert response.headers["X-Upstream"] == "fallback"
        assert sum(u.received for u in trio) == reached
        headers = dict(echoed["headers"])
        assert headers["Execution-Exception-Type"].endswith("BreakerOpen")
        # SCG's root cause is the failure itself when it has no cause of its own.
        assert headers["Root-Cause-Exception-Type"] == headers["Execution-Exception-Type"]
        assert headers["Root-Cause-Exception-Message"] == headers["Execution-Exception-Message"]

        for upstream in trio:
            upstream.mode = "ok"
        await asyncio.sleep(0.5)  # reset timeout passes: the next call is a probe
        async with session.get(url) as response:
            assert response.status == 200
            assert response.headers["X-Upstream"] in {"a", "b", "c"}
        assert breaker.state == "closed"
    finally:
        await gw.gateway.stop()
        await fallback.runner.cleanup()


async def test_a_failing_service_gets_no_retry_storm(
    tmp_path: Path, trio: list[ChaosUpstream], session: aiohttp.ClientSession
) -> None:
    for upstream in trio:
        upstream.mode = "503"
    routes = pool_yaml(trio) + textwrap.dedent(
        """
        routes:
          - id: retry
            uri: lb://pool
            predicates: [Path=/r/**]
            filters: [Retry=3]
        """
    )
    gw = await gateway_for(tmp_path, routes)
    try:
        clients = 300
        statuses = [await fetch(session, "GET", f"{gw.url}/r/x") for _ in range(clients)]
        assert set(statuses) == {503}
        reached = sum(u.received for u in trio)
        # retries <= 20 % of requests + a floor of 10 per window
        assert reached <= 1.2 * clients + 10, reached
        assert reached > clients  # the floor and ratio were used, not nothing
    finally:
        await gw.gateway.stop()


async def test_a_retried_post_arrives_intact_and_a_large_one_is_not_retried(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    failing, healthy = await start_chaos("a", "b")
    failing.mode = "503"
    routes = pool_yaml([failing, healthy]) + textwrap.dedent(
        """
        routes:
          - id: retry
            uri: lb://pool
            predicates: [Path=/r/**]
            filters:
              - name: Retry
                args: {retries: 2, methods: [GET, POST]}
        """
    )
    gw = await gateway_for(tmp_path, routes)
    try:
        small = os.urandom(256 * 1024)
        digest = hashlib.sha256(small).hexdigest()
        for _ in range(4):  # round robin: some start at the failing instance
            assert await fetch(session, "POST", f"{gw.url}/r/x", data=small) == 200
        assert failing.received >= 1
        assert healthy.bodies and all(b == (len(small), digest) for b in healthy.bodies)

        failing.received = healthy.received = 0
        large = os.urandom(4 * 1024 * 1024)
        statuses = [await fetch(session, "POST", f"{gw.url}/r/x", data=large) for _ in range(4)]
        assert statuses.count(503) == failing.received >= 1  # not retried
        assert statuses.count(200) == healthy.received
    finally:
        await gw.gateway.stop()
        await failing.stop()
        await healthy.stop()


async def test_hedging_answers_from_another_instance_when_one_stalls(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    slow, fast = await start_chaos("slow", "fast")
    slow.mode = "stall"
    routes = pool_yaml([slow, fast]) + textwrap.dedent(
        """
        routes:
          - id: hedged
            uri: lb://pool
            predicates: [Path=/h/**]
            metadata: {hedge-delay: 100}
        """
    )
    gw = await gateway_for(tmp_path, routes)
    try:
        for _ in range(4):
            started = asyncio.get_running_loop().time()
            async with session.get(f"{gw.url}/h/x") as response:
                assert response.status == 200
                assert response.headers["X-Upstream"] == "fast"
            assert asyncio.get_running_loop().time() - started < 2.0
        assert slow.received >= 1  # some started there and were hedged
    finally:
        await gw.gateway.stop()
        await slow.stop()
        await fast.stop()


async def test_bulkhead_sheds_load_with_retry_after(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    [stalled] = await start_chaos("stalled")
    stalled.mode = "stall"
    routes = pool_yaml([stalled]) + textwrap.dedent(
        """
        routes:
          - id: limited
            uri: lb://pool
            predicates: [Path=/l/**]
            metadata: {max-concurrent: 2}
        """
    )
    gw = await gateway_for(tmp_path, routes)
    held = [asyncio.ensure_future(fetch(session, "GET", f"{gw.url}/l/x")) for _ in range(2)]
    try:
        for _ in range(100):
            if stalled.received == 2:
                break
            await asyncio.sleep(0.02)
        async with session.get(f"{gw.url}/l/x") as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            assert (await response.json())["status"] == 503
        assert stalled.received == 2
    finally:
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        await gw.gateway.stop()
        await stalled.stop()


async def test_consistent_hash_keeps_a_user_on_one_instance(
    tmp_path: Path, trio: list[ChaosUpstream], session: aiohttp.ClientSession
) -> None:
    routes = pool_yaml(trio) + textwrap.dedent(
        """
        routes:
          - id: sticky
            uri: lb://pool
            predicates: [Path=/s/**]
            metadata: {load-balancer: consistent_hash, hash-on: "header:X-User"}
        """
    )
    gw = await gateway_for(tmp_path, routes)
    try:
        placement: dict[str, set[str]] = {}
        for user in (f"user-{i}" for i in range(12)):
            for _ in range(5):
                async with session.get(f"{gw.url}/s/x", headers={"X-User": user}) as response:
                    placement.setdefault(user, set()).add(response.headers["X-Upstream"])
        assert all(len(where) == 1 for where in placement.values()), placement
        assert len({next(iter(w)) for w in placement.values()}) > 1  # users spread out
    finally:
        await gw.gateway.stop()


async def test_a_service_level_policy_applies_and_a_route_overrides_it(
    tmp_path: Path, trio: list[ChaosUpstream], session: aiohttp.ClientSession
) -> None:
    instances = "\n".join(
        f"      - {{host: 127.0.0.1, port: {u.port}, id: {u.name}}}" for u in trio
    )
    routes = (
        textwrap.dedent(
            """
        services:
          pool:
            load-balancer: consistent_hash
            hash-on: "header:X-User"
            instances:
        """
        )
        + instances
        + textwrap.dedent(
            """
        routes:
          - id: sticky
            uri: lb://pool
            predicates: [Path=/s/**]
          - id: spread
            uri: lb://pool
            predicates: [Path=/r/**]
            metadata: {load-balancer: round_robin}
        """
        )
    )
    gw = await gateway_for(tmp_path, routes)
    try:
        for prefix, expected in (("/s", 1), ("/r", 3)):
            seen = set()
            for _ in range(6):
                async with session.get(f"{gw.url}{prefix}/x", headers={"X-User": "u7"}) as r:
                    seen.add(r.headers["X-Upstream"])
            assert len(seen) == expected, (prefix, seen)
    finally:
        await gw.gateway.stop()


async def test_a_reload_can_raise_and_remove_a_concurrency_cap(
    tmp_path: Path, trio: list[ChaosUpstream]
) -> None:
    def document(cap: str) -> str:
        return pool_yaml(trio) + textwrap.dedent(
            f"""
            routes:
              - id: limited
                uri: lb://pool
                predicates: [Path=/l/**]
                {cap}
            """
        )

    gw = await gateway_for(tmp_path, document("metadata: {max-concurrent: 2}"))
    runtime = gw.gateway.runtimes.get("pool")
    try:
        assert runtime.bulkhead is not None and runtime.bulkhead.max_concurrent == 2
        (tmp_path / "routes.yml").write_text(document("metadata: {max-concurrent: 10}"))
        assert gw.gateway.refresh() is None
        assert runtime.bulkhead is not None and runtime.bulkhead.max_concurrent == 10
        (tmp_path / "routes.yml").write_text(document(""))
        assert gw.gateway.refresh() is None
        assert runtime.bulkhead is None
    finally:
        await gw.gateway.stop()


async def test_the_bulkhead_holds_a_slot_until_the_body_is_over(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    streamer = await start_upstream("s")
    routes = textwrap.dedent(
        f"""
        services:
          big: [{{host: 127.0.0.1, port: {streamer.port}, id: s1}}]
        routes:
          - id: limited
            uri: lb://big
            metadata: {{max-concurrent: 1}}
        """
    )
    gw = await gateway_for(tmp_path, routes)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port, limit=2**16)
    try:
        # 8 MiB that this client reads slowly: the response head is out, the body isn't.
        writer.write(b"GET /bytes/8388608 HTTP/1.1\r\nHost: t\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        assert await fetch(session, "GET", f"{gw.url}/other") == 503
        while True:  # drain it: the slot is released with the body's end
            chunk_size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(chunk_size + 2)
            if chunk_size == 0:
                break
        for _ in range(50):
            if await fetch(session, "GET", f"{gw.url}/other") == 200:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the slot was never released")
    finally:
        writer.close()
        await gw.gateway.stop()
        await streamer.runner.cleanup()


async def test_a_client_leaving_during_the_hedge_delay_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    slow, other = await start_chaos("slow", "other")
    slow.mode = other.mode = "stall"
    routes = pool_yaml([slow, other]) + textwrap.dedent(
        """
        routes:
          - id: hedged
            uri: lb://pool
            predicates: [Path=/h/**]
            metadata: {hedge-delay: 300, max-concurrent: 5}
        """
    )
    gw = await gateway_for(tmp_path, routes)
    runtime = gw.gateway.runtimes.get("pool")
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"GET /h/x HTTP/1.1\r\nHost: t\r\n\r\n")
        for _ in range(100):
            if slow.received + other.received == 1:
                break
            await asyncio.sleep(0.01)
        # Gone (a reset, not a half-close, which lets the request finish) before the hedge
        # delay: the attempt is cancelled.
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        assert runtime.bulkhead is not None
        for _ in range(100):
            if runtime.bulkhead.active == 0:
                break
            await asyncio.sleep(0.02)
        assert runtime.bulkhead.active == 0
        await asyncio.sleep(0.4)  # past the hedge delay: no second attempt was started
        assert slow.received + other.received == 1
        assert runtime.outlier.ejected() == {}
    finally:
        await gw.gateway.stop()
        await slow.stop()
        await other.stop()


async def test_load_shedding_does_not_open_the_circuit_breaker(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    [stalled] = await start_chaos("stalled")
    stalled.mode = "stall"
    routes = pool_yaml([stalled]) + textwrap.dedent(
        """
        routes:
          - id: limited
            uri: lb://pool
            predicates: [Path=/l/**]
            metadata: {max-concurrent: 1, breaker-fail-max: 2}
            filters: [CircuitBreaker=limited-cb]
        """
    )
    gw = await gateway_for(tmp_path, routes)
    held = asyncio.ensure_future(fetch(session, "GET", f"{gw.url}/l/x"))
    try:
        for _ in range(100):
            if stalled.received == 1:
                break
            await asyncio.sleep(0.01)
        for _ in range(5):  # shed by the bulkhead, five times over the breaker's threshold
            assert await fetch(session, "GET", f"{gw.url}/l/x") == 503
        assert gw.gateway.runtimes.breakers.get("limited-cb").state == "closed"
    finally:
        held.cancel()
        await asyncio.gather(held, return_exceptions=True)
        await gw.gateway.stop()
        await stalled.stop()


async def test_a_services_response_timeout_applies_to_its_routes_unless_they_set_one(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """``services.<name>.response-timeout`` (shared with the services' mesh clients) is the
    default of every route to ``lb://<name>``; a route's own metadata wins."""
    [stalled] = await start_chaos("s")
    stalled.mode = "stall"
    routes = f"""
        services:
          pool:
            response-timeout: 150
            retry: {{retries: 2}}
            instances: [{{host: 127.0.0.1, port: {stalled.port}, id: s}}]
        routes:
          - id: inherits
            uri: lb://pool
            predicates: [Path=/a/**]
          - id: own
            uri: lb://pool
            predicates: [Path=/b/**]
            metadata: {{response-timeout: 600}}
        """
    gw = await gateway_for(tmp_path, routes)
    loop = asyncio.get_running_loop()
    try:
        for path, low, high in (("/a/x", 0.1, 0.5), ("/b/x", 0.55, 1.5)):
            started = loop.time()
            assert await fetch(session, "GET", f"{gw.url}{path}") == 504
            assert low <= loop.time() - started < high, path
    finally:
        await gw.gateway.stop()
        await stalled.stop()
