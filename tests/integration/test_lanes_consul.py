"""Gray-release lanes with instances in a real Consul agent: the lane from ``ServiceMeta.lane``
and from a ``lane=NAME`` tag, a sticky split over them, fallback and LaneStrict, and a lane
that empties and refills while the gateway runs."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from resilience.lanes import TrafficSplit
from tests.support.consul import ConsulAgent
from tests.support.echoed import Echoed, get
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.upstream import Upstream, start_upstream

T = TypeVar("T")

ROUTES = """
routes:
  - id: split
    uri: lb://orders
    predicates: [Path=/split/**]
    filters: [StripPrefix=1, 'LaneSplit=canary, 20, header:X-User-Id']
  - id: plain
    uri: lb://orders
    predicates: [Path=/plain/**]
    filters: [StripPrefix=1]
  - id: canary
    uri: lb://orders
    predicates: [Path=/canary/**]
    filters: [StripPrefix=1, Lane=canary]
  - id: blue
    uri: lb://orders
    predicates: [Path=/blue/**]
    filters: [StripPrefix=1, Lane=blue]
  - id: canary-strict
    uri: lb://orders
    predicates: [Path=/canary-strict/**]
    filters: [StripPrefix=1, Lane=canary, LaneStrict]
"""


async def eventually(probe: Callable[[], Awaitable[T]], what: str, timeout: float = 10.0) -> T:
    """Consul applies changes asynchronously and watches wake on them: poll, don't sleep."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture
async def upstreams() -> AsyncIterator[dict[str, Upstream]]:
    started = {name: await start_upstream(name) for name in ("stable", "canary", "blue")}
    yield started
    for upstream in started.values():
        await upstream.runner.cleanup()


@pytest.fixture
async def gateway(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upstreams: dict[str, Upstream],
) -> AsyncIterator[RunningGateway]:
    consul.register("orders", "orders-stable", upstreams["stable"].port)
    consul.register("orders", "orders-canary", upstreams["canary"].port, meta={"lane": "canary"})
    consul.register("orders", "orders-blue", upstreams["blue"].port, tags=["v2", "lane=blue"])
    monkeypatch.setenv("CONSUL_HTTP_ADDR", consul.http_addr)
    config = tmp_path / "routes.yml"
    config.write_text(textwrap.dedent(ROUTES))
    settings: dict[str, Any] = {"discovery": "consul", "register_self": False, "consul_wait": "5s"}
    gw = await start_gateway(config, **settings)
    try:
        assert gw.gateway.consul is not None
        assert await gw.gateway.consul.wait_ready(10)
        yield gw
    finally:
        await gw.gateway.stop()


def baggage(echoed: Echoed) -> list[str]:
    return echoed.request_headers.getall("baggage", [])


async def served(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> str | None:
    return (await get(session, url, **kwargs)).upstream


async def test_meta_and_tag_lanes_from_consul(
    gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    url = gateway.url
    assert {await served(session, f"{url}/plain/x") for _ in range(30)} == {"stable"}
    canary = await get(session, f"{url}/canary/x", headers={"baggage": "lane=blue,u=1"})
    assert canary.upstream == "canary"  # ServiceMeta.lane
    assert baggage(canary) == ["u=1,lane=canary"]
    blue = await get(session, f"{url}/blue/x")
    assert blue.upstream == "blue"  # the lane=blue tag
    assert baggage(blue) == ["lane=blue"]
    async with session.get(f"{gateway.management_url}/actuator/gateway/services") as response:
        (orders,) = [v for v in await response.json() if v["service"] == "orders"]
    assert orders["lanes"] == {"blue": 1, "canary": 1, "stable": 1}
    assert {i["instanceId"].split("@")[0]: i["lane"] for i in orders["instances"]} == {
        "orders-stable": "stable",
        "orders-canary": "canary",
        "orders-blue": "blue",
    }


async def test_sticky_split_over_consul_instances(
    gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    users = [f"user-{i}" for i in range(1000)]
    gate = asyncio.Semaphore(16)

    async def one(user: str) -> tuple[str, str | None]:
        async with gate:
            return user, await served(
                session, f"{gateway.url}/split/x", headers={"X-User-Id": user}
            )

    first = dict(await asyncio.gather(*(one(u) for u in users)))
    again = dict(await asyncio.gather(*(one(u) for u in users[:200])))
    split = TrafficSplit("canary", 20)
    assert first == {u: "canary" if split.sticky(u) == "canary" else "stable" for u in users}
    assert again == {u: first[u] for u in users[:200]}
    assert 0.15 <= list(first.values()).count("canary") / len(users) <= 0.25


async def test_a_lane_that_empties_falls_back_or_refuses_and_comes_back(
    consul: ConsulAgent, gateway: RunningGateway, session: aiohttp.ClientSession
) -> None:
    url = gateway.url
    assert await served(session, f"{url}/canary-strict/x") == "canary"
    consul.fail_ttl("orders-canary")  # its check fails: the canary lane is empty

    async def status(path: str) -> int:
        return (await get(session, f"{url}{path}")).status

    await eventually(lambda: _equals(status("/canary-strict/x"), 503), "LaneStrict 503")
    fell = await get(session, f"{url}/canary/x")
    assert fell.upstream == "stable"
    assert baggage(fell) == []  # a fallback is stable traffic
    async with session.get(f"{gateway.management_url}/actuator/prometheus") as response:
        text = await response.text()
    assert 'meshgate_lane_fallbacks_total{lane="canary",service="orders"} 1.0' in text
    consul.pass_ttl("orders-canary")
    await eventually(
        lambda: _equals(served(session, f"{url}/canary/x"), "canary"), "the canary back"
    )


async def _equals(value: Awaitable[object], expected: object) -> bool:
    return await value == expected
