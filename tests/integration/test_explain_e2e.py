"""The explain API against what really happens: for each of 20 varied requests, explain says
which route and which instance, then the same request goes through the proxy port to real echo
upstreams, and the route (an ``X-Route`` response header each route adds) and the instance (the
echo's ``X-Upstream``, named after its instance id) must be the ones explained.

Weight groups, a random LaneSplit and the random and least-request balancers make half of the
answers a draw: explain forecasts them from copies of the generators, so a forecast that moved
state, or drew from the wrong generator, disagrees within a few requests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import MakeGateway
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.upstream import Upstream, start_upstream

NAMES = ("shop-1", "shop-2", "shop-3", "rand-1", "rand-2", "weighted-1", "weighted-2")


@pytest.fixture
async def upstreams() -> AsyncIterator[dict[str, Upstream]]:
    started = {name: await start_upstream(name) for name in NAMES}
    yield started
    for server in started.values():
        await server.runner.cleanup()


def document(up: dict[str, Upstream]) -> str:
    def member(name: str, extra: str = "") -> str:
        return f"- {{host: 127.0.0.1, port: {up[name].port}, id: {name}{extra}}}"

    def route(route_id: str, uri: str, predicates: str, filters: str = "", meta: str = "") -> str:
        listed = ", ".join(f for f in (filters, f"'AddResponseHeader=X-Route, {route_id}'") if f)
        return f"""
          - id: {route_id}
            uri: {uri}
            predicates: [{predicates}]
            filters: [{listed}]
            metadata: {{{meta}}}"""

    return f"""
services:
  shop:
    {member("shop-1")}
    {member("shop-2")}
    {member("shop-3", ", metadata: {lane: canary}")}
  rand:
    {member("rand-1")}
    {member("rand-2")}
  weighted:
    {member("weighted-1", ", weight: 3")}
    {member("weighted-2", ", weight: 1")}
spring:
  cloud:
    gateway:
      routes:{
        route(
            "beta",
            "lb://shop",
            "Path=/shop/**, 'Header=X-Version, v2'",
            "StripPrefix=1, Lane=canary",
        )
    }{route("split", "lb://shop", "Path=/split/**", "StripPrefix=1, 'LaneSplit=canary, 50'")}{
        route("shop", "lb://shop", "Path=/shop/**, 'Method=GET,POST'", "StripPrefix=1")
    }{route("w-random", "lb://rand", "Path=/w/**, 'Weight=w, 5'", meta="load-balancer: random")}{
        route(
            "w-weighted",
            "lb://weighted",
            "Path=/w/**, 'Weight=w, 5'",
            meta="load-balancer: weighted",
        )
    }{route("hash", "lb://shop", "Path=/hash/**", meta="hash-on: 'header:X-User'")}{
        route("least", "lb://rand", "Path=/least/**", meta="load-balancer: least_request")
    }{route("debug", "lb://shop", "'Query=debug'")}{
        route("session", "lb://rand", "'Cookie=session, s-.*'", meta="load-balancer: random")
    }{route("hosted", "lb://weighted", "'Host=**.example.org'")}{
        route(
            "local",
            f"http://127.0.0.1:{up['shop-2'].port}",
            "Path=/local/**, RemoteAddr=127.0.0.1/32",
        )
    }
"""


REQUESTS: list[dict[str, Any]] = [
    {"url": "/shop/a"},
    {"url": "/shop/b", "headers": {"X-Version": "v2"}},
    {"url": "/shop/c", "method": "POST"},
    {"url": "/split/1"},
    {"url": "/split/2"},
    {"url": "/w/1"},
    {"url": "/w/2"},
    {"url": "/w/3"},
    {"url": "/hash/x", "headers": {"X-User": "alice"}},
    {"url": "/hash/y", "headers": {"X-User": "bob"}},
    {"url": "/least/1"},
    {"url": "/other?debug=1"},
    {"url": "/other", "cookies": {"session": "s-42"}},
    {"url": "/other", "headers": {"Host": "api.example.org"}},
    {"url": "/local/z"},
    {"url": "/split/3"},
    {"url": "/w/4"},
    {"url": "/shop/d", "headers": {"X-Version": "v2"}},
    {"url": "/least/2"},
    {"url": "/other", "cookies": {"session": "s-43"}},
]


@pytest.mark.parametrize("seed", [7, 11, 12])
async def test_explained_route_and_instance_are_what_the_request_gets(
    upstreams: dict[str, Upstream], tmp_path: Path, seed: int
) -> None:
    # Seeded, so every draw's both sides come up (checked below); the forecast is a copy of
    # the gateway's own generators whatever the seed.
    config = tmp_path / "routes.yml"
    config.write_text(document(upstreams))
    running = await start_gateway(config, rng=random.Random(seed))
    try:
        await check_twenty_requests(running, upstreams)
    finally:
        await running.gateway.stop()


async def check_twenty_requests(gateway: RunningGateway, upstreams: dict[str, Upstream]) -> None:
    by_port = {server.port: name for name, server in upstreams.items()}
    seen_routes: set[str] = set()
    seen_instances: set[str] = set()
    async with aiohttp.ClientSession() as session:
        for described in REQUESTS:
            async with session.post(
                f"{gateway.management_url}/actuator/gateway/explain", json=described
            ) as answer:
                assert answer.status == 200, await answer.text()
                explained = await answer.json()
            instance = explained["instance"]
            assert instance is not None, explained
            expected = instance["instanceId"] or by_port[instance["port"]]
            cookies = "; ".join(f"{k}={v}" for k, v in described.get("cookies", {}).items())
            headers = dict(described.get("headers", {}))
            if cookies:
                headers["Cookie"] = cookies
            async with session.request(
                described.get("method", "GET"), gateway.url + described["url"], headers=headers
            ) as real:
                assert real.status == 200, (described, await real.text())
                assert real.headers["X-Route"] == explained["route"], (described, explained)
                assert real.headers["X-Upstream"] == expected, (described, explained["notes"])
            seen_routes.add(explained["route"])
            seen_instances.add(expected)
    # The requests cover every route and both sides of every draw.
    assert seen_routes == {
        "beta", "split", "shop", "w-random", "w-weighted", "hash", "least", "debug", "session",
        "hosted", "local",
    }  # fmt: skip
    assert {"shop-3", "rand-1", "rand-2", "weighted-1"} <= seen_instances


async def test_explain_shows_the_verdicts_the_filters_and_the_forwarded_head(
    make_gateway: MakeGateway, upstreams: dict[str, Upstream]
) -> None:
    gateway = await make_gateway(document(upstreams))
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{gateway.management_url}/actuator/gateway/explain",
            params=[("url", "/shop/a/b?x=1"), ("header", "X-Version: v2")],
        ) as answer:
            explained = await answer.json()
        async with session.get(
            f"{gateway.management_url}/actuator/gateway/explain", params={"url": "/order/1"}
        ) as missing:
            nothing = await missing.json()
    assert explained["route"] == "beta"
    assert explained["lane"] == "canary"
    assert explained["instance"]["instanceId"] == "shop-3"
    first = explained["routes"][0]
    assert first["matched"] and first["evaluated"]
    reasons = [p["reason"] for p in first["predicates"]]
    assert reasons == ["path /shop/a/b matches /shop/**", "header X-Version matches v2"]
    later = next(r for r in explained["routes"] if r["id"] == "shop")
    assert not later["evaluated"]
    strip = explained["filters"][0]
    assert (strip["name"], strip["effect"]) == ("StripPrefix", "path /shop/a/b -> /a/b")
    assert explained["filters"][1]["effect"] == "lane -> canary"
    forwarded = explained["forwarded"]
    assert (forwarded["method"], forwarded["path"], forwarded["query"]) == ("GET", "/a/b", "x=1")
    names = {name.lower() for name, _ in forwarded["headers"]}
    assert {"host", "x-forwarded-for", "x-version"} <= names
    assert nothing["route"] is None
    assert nothing["answeredBy"]["status"] == 404
    path_reasons = {r["id"]: r["predicates"][0]["reason"] for r in nothing["routes"]}
    assert path_reasons["shop"] == "path /order/1 does not match /shop/**"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "orders"}, "must start with /"),
        ({"url": "/a", "method": "G T"}, "not an HTTP method token"),
        ({"url": "/a", "headers": {"Bad Name": "x"}}, "not a token"),
        ({"url": "/a", "remoteAddress": "nowhere"}, "not an IP address"),
        ({"url": "/a", "colour": "red"}, "unknown field(s) colour"),
        ({"url": "/a/%2e%2e/b"}, "would refuse"),
        ([1, 2], "must be a JSON object"),
        ({"url": "/a", "headers": {"X": "\u20ac"}}, "outside ISO-8859-1"),
        ({"url": "http://[::1/x"}, "is not a URL"),
        ({"url": "http://\u20ac/x"}, "must be ASCII"),
    ],
)
async def test_a_bad_description_is_a_400_that_says_what(
    make_gateway: MakeGateway, upstreams: dict[str, Upstream], body: object, message: str
) -> None:
    gateway = await make_gateway(document(upstreams))
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{gateway.management_url}/actuator/gateway/explain", json=body) as answer,
    ):
        assert answer.status == 400
        error = await answer.json()
    assert message in error["message"]
    assert error["path"] == "/actuator/gateway/explain"


async def test_a_deeply_nested_body_is_a_400(
    make_gateway: MakeGateway, upstreams: dict[str, Upstream]
) -> None:
    gateway = await make_gateway(document(upstreams))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gateway.management_url}/actuator/gateway/explain",
            data="[" * 60_000,
            headers={"Content-Type": "application/json"},
        ) as answer,
    ):
        assert answer.status == 400


async def test_explaining_spends_no_rate_limit_token(
    make_gateway: MakeGateway, upstreams: dict[str, Upstream]
) -> None:
    gateway = await make_gateway(
        f"""
        routes:
          - id: limited
            uri: {upstreams["shop-1"].url}
            predicates: [Path=/rl/**]
            filters:
              - name: RequestRateLimiter
                args:
                  redis-rate-limiter.replenishRate: 1
                  redis-rate-limiter.burstCapacity: 1
                  key-resolver: header:X-Api-Key
        """
    )
    explain = f"{gateway.management_url}/actuator/gateway/explain"
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.post(
                explain, json={"url": "/rl/1", "headers": {"X-Api-Key": "k"}}
            ) as answer:
                explained = await answer.json()
            assert explained["answeredBy"] is None
            (limiter,) = explained["filters"]
            assert limiter["effect"] == "not run: it would take a token from the bucket of key 'k'"
        # The one token of the bucket is still there for the real request.
        async with session.get(f"{gateway.url}/rl/1", headers={"X-Api-Key": "k"}) as real:
            assert real.status == 200
        async with session.get(f"{gateway.url}/rl/1", headers={"X-Api-Key": "k"}) as second:
            assert second.status == 429
