"""The dashboard's data end to end: real upstreams, the gateway in-process and as two worker
processes, ``/actuator/gateway/stats``, its event stream, ``/actuator/gateway/config`` and
the dashboard's files, with and without the management token."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import MakeGateway
from tests.support.gateway import spawn_gateway
from tests.support.upstream import Upstream, start_upstream


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Upstream, Upstream]]:
    one, two = await start_upstream("one"), await start_upstream("two")
    yield one, two
    for server in (one, two):
        await server.runner.cleanup()


def routes(one: Upstream, two: Upstream) -> str:
    return f"""
    services:
      shop:
        - {{host: 127.0.0.1, port: {one.port}, id: shop-1, metadata: {{zone: z1}}}}
        - {{host: 127.0.0.1, port: {two.port}, id: shop-2, metadata: {{lane: canary}}}}
    routes:
      - id: shop
        uri: lb://shop
        predicates: [Path=/shop/**]
        filters: [StripPrefix=1]
      - id: fixed
        uri: http://127.0.0.1:{one.port}
        predicates: [Path=/fixed/**]
        filters: [StripPrefix=1]
    """


async def stats_when(
    session: aiohttp.ClientSession,
    url: str,
    ready: Callable[[dict[str, Any]], bool],
    timeout: float = 10.0,
    **kwargs: Any,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        async with session.get(f"{url}/actuator/gateway/stats", **kwargs) as response:
            assert response.status == 200
            body: dict[str, Any] = await response.json()
        if ready(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.2)


def route_of(body: dict[str, Any], route_id: str) -> dict[str, Any]:
    return next(r for r in body["routes"] if r["id"] == route_id)


async def test_numbers_per_route_and_instance_and_in_flight(
    make_gateway: MakeGateway, pair: tuple[Upstream, Upstream]
) -> None:
    gateway = await make_gateway(routes(*pair))
    async with aiohttp.ClientSession() as session:
        for index in range(40):
            async with session.get(f"{gateway.url}/shop/item/{index}") as response:
                assert response.status == 200
        for code in (500, 503, 200, 200, 200):
            async with session.get(f"{gateway.url}/fixed/status/{code}") as response:
                assert response.status == code
        body = await stats_when(
            session,
            gateway.management_url,
            lambda b: b["totals"]["1m"]["requests"] >= 45,
        )
        assert body["totals"]["1m"]["requests"] == 45
        shop = route_of(body, "shop")
        assert (shop["uri"], shop["1m"]["requests"], shop["1m"]["errors"]) == ("lb://shop", 40, 0)
        assert shop["1m"]["p50"] is not None and shop["1m"]["p99"] >= shop["1m"]["p50"]
        fixed = route_of(body, "fixed")
        assert (fixed["1m"]["requests"], fixed["1m"]["errors"]) == (5, 2)
        assert fixed["1m"]["errorRate"] == pytest.approx(0.4)
        (service,) = body["services"]
        by_id = {i["instanceId"]: i for i in service["instances"]}
        assert set(by_id) == {"shop-1", "shop-2"}
        assert by_id["shop-1"]["zone"] == "z1" and by_id["shop-2"]["lane"] == "canary"
        # Round robin over the stable lane only: the canary got none of the 40.
        assert by_id["shop-1"]["1m"]["requests"] == 40
        assert by_id["shop-1"]["1m"]["attempts"] == 40
        assert by_id["shop-2"]["1m"]["requests"] == 0
        assert all(i["healthy"] and i["health"] == "passing" for i in by_id.values())
        series = body["series"]
        assert len(series["timestamps"]) == len(series["rate"]) >= 1
        # A slow request is in flight on its route and its instance while it waits.
        slow = asyncio.create_task(session.get(f"{gateway.url}/shop/delay/3"))
        busy = await stats_when(
            session, gateway.management_url, lambda b: route_of(b, "shop")["inFlight"] == 1
        )
        assert busy["totals"]["inFlight"] == 1
        instance = next(i for i in busy["services"][0]["instances"] if i["instanceId"] == "shop-1")
        assert instance["inFlight"] == 1
        (await slow).release()


async def test_the_stream_sends_a_sample_a_second_and_ends_with_the_gateway(
    make_gateway: MakeGateway, pair: tuple[Upstream, Upstream]
) -> None:
    gateway = await make_gateway(routes(*pair))
    events: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.management_url}/actuator/gateway/stats/stream") as stream,
    ):
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream"
        async for raw in stream.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            if len(events) == 4:
                break
        # The first may come before the first sample (a second after the start).
        stamps = [e["timestamp"] for e in events if e["timestamp"] is not None]
        assert len(stamps) >= 3
        assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 1.0
        assert {"totals", "routes", "services", "series"} <= set(events[0])
        # The stream does not hold up a shutdown: the drain ends it.
        started = time.monotonic()
        await gateway.gateway.stop()
        assert time.monotonic() - started < 5.0


async def test_streams_are_bounded(
    make_gateway: MakeGateway, pair: tuple[Upstream, Upstream]
) -> None:
    gateway = await make_gateway(routes(*pair))
    url = f"{gateway.management_url}/actuator/gateway/stats/stream"
    async with aiohttp.ClientSession() as session:
        held = [await session.get(url) for _ in range(16)]
        try:
            assert {response.status for response in held} == {200}
            async with session.get(url) as refused:
                assert refused.status == 503
                assert "16 stat streams" in (await refused.json())["message"]
        finally:
            for response in held:
                response.close()
        # A closed stream frees its place.
        deadline = time.monotonic() + 5
        while True:
            async with session.get(url) as again:
                if again.status == 200 or time.monotonic() > deadline:
                    assert again.status == 200
                    break
            await asyncio.sleep(0.2)


async def test_config_names_the_sources_and_the_last_refused_reload(
    make_gateway: MakeGateway, pair: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    gateway = await make_gateway(routes(*pair))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gateway.management_url}/actuator/gateway/config") as response:
            before = await response.json()
        assert before["sources"][0]["kind"] == "file"
        assert before["sources"][0]["routes"] == 2
        assert before["lastReloadOk"] is True and before["lastError"] is None
        assert before["lastReload"] is not None
        config = Path(gateway.gateway.settings.config or "")
        await asyncio.to_thread(config.write_text, "routes: [{id: broken}]\n")
        async with session.post(f"{gateway.management_url}/actuator/gateway/refresh") as refused:
            assert refused.status == 400
        async with session.get(f"{gateway.management_url}/actuator/gateway/config") as response:
            after = await response.json()
    assert after["lastReloadOk"] is False
    assert "missing required key 'uri'" in after["lastError"]
    assert after["lastErrorAt"] >= after["lastReload"]
    assert after["routes"] == 2  # the last good table still serves


async def test_the_token_guards_the_data_and_not_the_dashboards_files(
    make_gateway: MakeGateway, pair: tuple[Upstream, Upstream]
) -> None:
    gateway = await make_gateway(routes(*pair), management_token="s3cret")
    base = gateway.management_url
    async with aiohttp.ClientSession() as session:
        for path in ("/dashboard", "/dashboard/", "/dashboard/vendor/uPlot.iife.min.js"):
            async with session.get(base + path) as response:
                assert response.status == 200, path
                assert "script-src 'self'" in response.headers["Content-Security-Policy"]
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with session.get(base + "/dashboard/../../pyproject.toml") as response:
            assert response.status in (401, 404)
        async with session.get(base + "/dashboard/nothing.js") as response:
            assert response.status == 404
        for path in (
            "/actuator/gateway/stats",
            "/actuator/gateway/stats/stream",
            "/actuator/gateway/config",
            "/actuator/gateway/explain?url=/shop/1",
        ):
            async with session.get(base + path) as response:
                assert response.status == 401, path
            async with session.get(
                base + path, headers={"Authorization": "Bearer s3cret"}
            ) as response:
                assert response.status == 200, path


async def test_without_the_dashboard_no_live_numbers_are_served(
    make_gateway: MakeGateway, pair: tuple[Upstream, Upstream]
) -> None:
    gateway = await make_gateway(routes(*pair), dashboard=False)
    base = gateway.management_url
    async with aiohttp.ClientSession() as session:
        for path in ("/dashboard", "/actuator/gateway/stats", "/actuator/gateway/stats/stream"):
            async with session.get(base + path) as response:
                assert response.status == 404, path
        for path in ("/actuator/gateway/config", "/actuator/gateway/explain?url=/shop/1"):
            async with session.get(base + path) as response:
                assert response.status == 200, path
        async with session.get(base + "/actuator/gateway") as response:
            hrefs = [entry["href"] for entry in await response.json()]
    assert "/actuator/gateway/explain" in hrefs
    assert not [h for h in hrefs if "/stats" in h]
    assert gateway.gateway.live_counters is None


async def test_two_workers_numbers_are_the_whole_gateways(
    pair: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    config = tmp_path / "routes.yml"
    config.write_text(routes(*pair))
    gateway = await asyncio.to_thread(spawn_gateway, config, tmp_path, GATEWAY_WORKERS="2")
    try:
        # A new connection per request: SO_REUSEPORT spreads them over both workers.
        for index in range(120):
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as one,
                one.get(f"http://127.0.0.1:{gateway.port}/shop/{index}") as response,
            ):
                assert response.status == 200
        async with aiohttp.ClientSession() as session:
            body = await stats_when(
                session,
                gateway.management_url,
                lambda b: b["totals"]["1m"]["requests"] >= 120,
            )
        assert body["workers"] == 2
        assert route_of(body, "shop")["1m"]["requests"] == 120
        shop_1 = next(i for i in body["services"][0]["instances"] if i["instanceId"] == "shop-1")
        assert shop_1["1m"]["requests"] == 120
    finally:
        await asyncio.to_thread(gateway.stop)
