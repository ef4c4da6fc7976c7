"""Gray-release lanes end to end: real echo upstreams (a stable and a canary instance of one
service, from the route file's ``services:``), the gateway in-process and as two real
processes. The echo upstream reports the headers it received, so the baggage each hop sends
is checked where it arrives."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from resilience.lanes import STABLE, TrafficSplit
from tests.conftest import MakeGateway
from tests.support.echoed import Echoed, get
from tests.support.gateway import GatewayProcess, RunningGateway, spawn_gateway
from tests.support.upstream import Upstream, start_upstream

USERS = 1000


@pytest.fixture
async def instances() -> AsyncIterator[tuple[Upstream, Upstream]]:
    stable, canary = await start_upstream("stable"), await start_upstream("canary")
    yield stable, canary
    for server in (stable, canary):
        await server.runner.cleanup()


def routes(stable: Upstream, canary: Upstream) -> str:
    return f"""
    services:
      orders:
        - {{host: 127.0.0.1, port: {stable.port}, id: s1}}
        - {{host: 127.0.0.1, port: {canary.port}, id: c1, metadata: {{lane: canary}}}}
    routes:
      - id: split
        uri: lb://orders
        predicates: [Path=/split/**]
        filters: [StripPrefix=1, 'LaneSplit=canary, 20, header:X-User-Id']
      - id: beta
        uri: lb://orders
        predicates: [Path=/beta/**, 'Header=X-Beta, true']
        filters: [StripPrefix=1, Lane=canary]
      - id: plain
        uri: lb://orders
        predicates: ['Path=/plain/**,/beta/**']
        filters: [StripPrefix=1]
      - id: canary
        uri: lb://orders
        predicates: [Path=/canary/**]
        filters: [StripPrefix=1, Lane=canary]
      - id: pinned-stable
        uri: lb://orders
        predicates: [Path=/stable/**]
        filters: [StripPrefix=1, Lane=stable]
      - id: green
        uri: lb://orders
        predicates: [Path=/green/**]
        filters: [StripPrefix=1, Lane=green]
      - id: green-strict
        uri: lb://orders
        predicates: [Path=/green-strict/**]
        filters: [StripPrefix=1, Lane=green, LaneStrict]
      - id: canary-strict
        uri: lb://orders
        predicates: [Path=/canary-strict/**]
        filters: [StripPrefix=1, Lane=canary, LaneStrict]
      - id: fixed
        uri: {stable.url}
        predicates: [Path=/fixed/**]
        filters: [StripPrefix=1]
      - id: fixed-lane
        uri: {stable.url}
        predicates: [Path=/fixed-lane/**]
        filters: [StripPrefix=1, Lane=canary]
    """


def baggage(echoed: Echoed) -> list[str]:
    return echoed.request_headers.getall("baggage", [])


async def prometheus(session: aiohttp.ClientSession, gw: RunningGateway) -> dict[str, float]:
    async with session.get(f"{gw.management_url}/actuator/prometheus") as response:
        text = await response.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


async def lanes_of(
    send: Callable[[str], Awaitable[str | None]], users: list[str], parallel: int = 16
) -> dict[str, str | None]:
    """Which upstream served each user, ``parallel`` requests at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one(user: str) -> tuple[str, str | None]:
        async with gate:
            return user, await send(user)

    return dict(await asyncio.gather(*(one(u) for u in users)))


# -- the split ---------------------------------------------------------------------------------


async def test_a_sticky_split_across_two_gateway_processes(
    instances: tuple[Upstream, Upstream], tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """1,000 users: 15-25 % on the canary, each one on the same instance on every request and
    on both gateway processes, exactly where the pinned hash puts them."""
    stable, canary = instances
    config = tmp_path / "routes.yml"
    config.write_text(textwrap.dedent(routes(stable, canary)))
    first, second = await asyncio.gather(
        asyncio.to_thread(spawn_gateway, config, tmp_path, GATEWAY_ACCESS_LOG="false"),
        asyncio.to_thread(spawn_gateway, config, tmp_path, GATEWAY_ACCESS_LOG="false"),
    )
    try:

        def via(gateway: GatewayProcess) -> Callable[[str], Awaitable[str | None]]:
            async def send(user: str) -> str | None:
                echoed = await get(session, f"{gateway.url}/split/x", headers={"X-User-Id": user})
                assert echoed.status == 200, echoed.body
                lane = "canary" if echoed.upstream == "canary" else None
                assert baggage(echoed) == ([f"lane={lane}"] if lane else [])
                return echoed.upstream

            return send

        users = [f"user-{i}" for i in range(USERS)]
        on_first = await lanes_of(via(first), users)
        on_second = await lanes_of(via(second), users)
        again = await lanes_of(via(first), users[:300])
        share = sum(1 for u in users if on_first[u] == "canary") / USERS
        assert 0.15 <= share <= 0.25, share
        assert on_second == on_first  # the other process: same users, same instances
        assert again == {u: on_first[u] for u in users[:300]}  # repeated: the same
        split = TrafficSplit("canary", 20)
        expected = {u: "canary" if split.sticky(u) == "canary" else "stable" for u in users}
        assert on_first == expected  # where the pinned hash puts them, nowhere else
    finally:
        await asyncio.gather(asyncio.to_thread(first.stop), asyncio.to_thread(second.stop))


async def test_a_request_without_the_key_goes_to_stable(
    instances: tuple[Upstream, Upstream], make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(*instances))
    served = {(await get(session, f"{gw.url}/split/x")).upstream for _ in range(30)}
    assert served == {"stable"}


# -- routes without a lane, targeting, pinning ---------------------------------------------------


async def test_unlaned_routes_never_reach_the_canary(
    instances: tuple[Upstream, Upstream], make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(*instances))
    for path in ("/plain/x", "/stable/x"):
        served = [await get(session, f"{gw.url}{path}") for _ in range(40)]
        assert {e.upstream for e in served} == {"stable"}
        assert all(baggage(e) == [] for e in served)
    assert (await get(session, f"{gw.url}/canary/x")).upstream == "canary"


async def test_a_predicate_targets_the_lane(
    instances: tuple[Upstream, Upstream], make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(*instances))
    beta = await get(session, f"{gw.url}/beta/x", headers={"X-Beta": "true"})
    assert beta.upstream == "canary"
    assert (await get(session, f"{gw.url}/beta/x")).upstream == "stable"


# -- baggage -------------------------------------------------------------------------------------


async def test_baggage_carries_the_lane_upstream_merged_with_the_clients(
    instances: tuple[Upstream, Upstream], make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(*instances))
    echoed = await get(
        session, f"{gw.url}/canary/x", headers={"baggage": "user=42, lane=evil;p=1, tier=gold"}
    )
    assert echoed.upstream == "canary"
    assert baggage(echoed) == ["user=42, tier=gold,lane=canary"]
    # Stable traffic: the client's entries as they came, no lane entry.
    plain = await get(session, f"{gw.url}/plain/x", headers={"baggage": "user=42,  tier=gold"})
    assert baggage(plain) == ["user=42,  tier=gold"]
    # A fixed address: the lane the route chose travels on.
    assert baggage(await get(session, f"{gw.url}/fixed-lane/x")) == ["lane=canary"]
    assert baggage(await get(session, f"{gw.url}/fixed/x")) == []


async def test_untrusted_inbound_lane_is_ignored_and_stripped(
    instances: tuple[Upstream, Upstream], make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(*instances))  # GATEWAY_TRUST_INBOUND_LANE defaults to false
    for path in ("/plain/x", "/fixed/x"):
        for value in ("lane=canary", "user=1,lane=canary;x=y", "Lane=canary"):
            echoed = await get(session, f"{gw.url}{path}", headers={"baggage": value})
            assert echoed.upstream == "stable"
            assert all("lane" not in entry.lower() for entry in baggage(echoed)), baggage(echoed)
    kept = await get(session, f"{gw.url}/plain/x", headers={"baggage": "user=1,lane=canary;x=y"})
    assert baggage(kept) == ["user=1"]


async def test_trusted_inbound_lane_is_honoured_and_a_route_filter_wins(
    instances: tuple[Upstream, Upstream], make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(*instances), trust_inbound_lane=True)
    inbound = {"baggage": "user=1, lane=canary"}
    honoured = await get(session, f"{gw.url}/plain/x", headers=inbound)
    assert honoured.upstream == "canary"
    assert baggage(honoured) == ["user=1,lane=canary"]
    # Lane=stable on the route beats the baggage.
    pinned = await get(session, f"{gw.url}/stable/x", headers=inbound)
    assert pinned.upstream == "stable"
    assert baggage(pinned) == ["user=1"]
    # So does LaneSplit's decision: user-1 is in stable's buckets.
    split = await get(session, f"{gw.url}/split/x", headers={**inbound, "X-User-Id": "user-1"})
    assert split.upstream == "stable"
    # A fixed address passes the trusted lane on to the next hop.
    assert baggage(await get(session, f"{gw.url}/fixed/x", headers=inbound)) == [
        "user=1,lane=canary"
    ]
    # Baggage naming a lane nobody has: stable, and no lane entry goes on.
    gone = await get(session, f"{gw.url}/plain/x", headers={"baggage": "lane=green"})
    assert gone.upstream == "stable"
    assert baggage(gone) == []


# -- fallback and LaneStrict ---------------------------------------------------------------------


async def access_lines(capsys: pytest.CaptureFixture[str], count: int) -> list[dict[str, Any]]:
    """The access log's lines so far (its writer thread flushes every 0.1 s)."""
    lines: list[dict[str, Any]] = []
    for _ in range(100):
        out = capsys.readouterr().out
        lines += [json.loads(s) for s in out.splitlines() if s.startswith('{"time"')]
        if len(lines) >= count:
            break
        await asyncio.sleep(0.05)
    return lines


async def test_fallback_to_stable_is_counted_and_logged(
    instances: tuple[Upstream, Upstream],
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gw = await make_gateway(routes(*instances))
    for _ in range(3):
        fell = await get(session, f"{gw.url}/green/x", headers={"baggage": "user=1"})
        assert fell.upstream == "stable"
        assert baggage(fell) == ["user=1"]  # stable: no lane entry
    assert (await get(session, f"{gw.url}/canary/x")).upstream == "canary"
    assert (await get(session, f"{gw.url}/fixed/x")).upstream == "stable"
    values = await prometheus(session, gw)
    assert values['meshgate_lane_fallbacks_total{lane="green",service="orders"}'] == 3
    assert not any("canary" in k for k in values if k.startswith("meshgate_lane_fallbacks"))
    ok = 'meshgate_requests_total{lane="%s",method="GET",route="%s",status="2xx"}'
    assert values[ok % ("stable", "green")] == 3  # the label is the lane actually used
    assert values[ok % ("canary", "canary")] == 1
    assert values[ok % ("", "fixed")] == 1  # no lb:// service
    lines = {line["route"]: line for line in await access_lines(capsys, 5)}
    assert lines["green"]["laneFallback"] is True
    assert lines["green"]["lane"] == STABLE
    assert lines["canary"]["laneFallback"] is False
    assert lines["canary"]["lane"] == "canary"
    assert lines["fixed"]["lane"] is None


async def test_lane_strict_answers_503_instead_of_falling_back(
    instances: tuple[Upstream, Upstream],
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = await make_gateway(routes(*instances))
    refused = await get(session, f"{gw.url}/green-strict/x")
    assert refused.status == 503
    assert refused.report == {}  # no upstream answered
    body = refused.json()
    assert (body["status"], body["error"]) == (503, "Service Unavailable")
    assert body["requestId"] == refused.headers["X-Request-Id"]
    assert "no instance of service 'orders' in lane 'green'" in caplog.text
    assert (await get(session, f"{gw.url}/canary-strict/x")).upstream == "canary"
    values = await prometheus(session, gw)
    assert not any(k.startswith("meshgate_lane_fallbacks_total{") for k in values)


# -- the actuator ------------------------------------------------------------------------------


async def test_services_actuator_shows_instances_per_lane(
    instances: tuple[Upstream, Upstream], make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(routes(*instances))
    async with session.get(f"{gw.management_url}/actuator/gateway/services") as response:
        views = await response.json()
    (orders,) = [v for v in views if v["service"] == "orders"]
    assert orders["lanes"] == {"canary": 1, "stable": 1}
    assert {i["instanceId"]: i["lane"] for i in orders["instances"]} == {
        "s1": "stable",
        "c1": "canary",
    }
