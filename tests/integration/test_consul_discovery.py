"""Discovery, KV routes and tag routes against a real Consul agent, gateway in-process."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from tests.support.consul import ConsulAgent
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.upstream import Upstream, start_upstream

T = TypeVar("T")


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


async def becomes(probe: Callable[[], Awaitable[object]], expected: object, what: str) -> None:
    async def matches() -> bool:
        return await probe() == expected

    await eventually(matches, what)


@pytest.fixture
async def upstreams() -> AsyncIterator[list[Upstream]]:
    started = [await start_upstream(f"u{i}") for i in range(3)]
    yield started
    for upstream in started:
        await upstream.runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def consul_gateway(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    config: Path | None,
    **settings: Any,
) -> RunningGateway:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", consul.http_addr)
    values: dict[str, Any] = {"discovery": "consul", "register_self": False, "consul_wait": "5s"}
    values.update(settings)
    return await start_gateway(config, **values)


def routes_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yml"
    path.write_text(textwrap.dedent(text))
    return path


async def served_by(session: aiohttp.ClientSession, url: str) -> str | None:
    async with session.get(url) as response:
        await response.read()
        return response.headers.get("X-Upstream") if response.status == 200 else None


async def status_of(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as response:
        await response.read()
        return response.status


ORDERS = """
routes:
  - id: orders
    uri: lb://orders
    predicates: [Path=/orders/**]
"""


async def test_instances_join_fail_recover_and_leave_without_a_restart(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upstreams: list[Upstream],
    session: aiohttp.ClientSession,
) -> None:
    u0, u1, _ = upstreams
    consul.register("orders", "orders-0", u0.port, ttl="30s", initial_status="passing")
    gw = await consul_gateway(consul, monkeypatch, routes_file(tmp_path, ORDERS))
    url = f"{gw.url}/orders/x"
    try:
        assert await gw.gateway.consul.wait_ready(10)  # type: ignore[union-attr]
        assert await served_by(session, url) == "u0"

        consul.fail_ttl("orders-0")  # failing its TTL takes it out of rotation
        await becomes(lambda: status_of(session, url), 503, "503")
        async with session.get(url) as response:
            body = await response.json()
        assert body["status"] == 503

        consul.pass_ttl("orders-0")
        await becomes(lambda: served_by(session, url), "u0", "u0 back")

        consul.register("orders", "orders-1", u1.port, ttl="30s", initial_status="passing")

        async def both() -> bool:
            seen = {await served_by(session, url) for _ in range(6)}
            return seen == {"u0", "u1"}

        await eventually(both, "u1 joining the rotation")

        consul.deregister("orders-0")

        async def only_u1() -> bool:
            seen = {await served_by(session, url) for _ in range(6)}
            return seen == {"u1"}

        await eventually(only_u1, "u0 leaving the rotation")
    finally:
        await gw.gateway.stop()


async def test_warning_instances_are_routed_only_when_accepted(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upstreams: list[Upstream],
    session: aiohttp.ClientSession,
) -> None:
    u0 = upstreams[0]
    consul.register("orders", "orders-0", u0.port, ttl="30s", initial_status="warning")
    strict = await consul_gateway(consul, monkeypatch, routes_file(tmp_path, ORDERS))
    lenient = await consul_gateway(
        consul, monkeypatch, routes_file(tmp_path, ORDERS), consul_accept_warning=True
    )
    try:
        for gw in (strict, lenient):
            assert await gw.gateway.consul.wait_ready(10)  # type: ignore[union-attr]
        assert await status_of(session, f"{strict.url}/orders/x") == 503
        assert await served_by(session, f"{lenient.url}/orders/x") == "u0"
    finally:
        await strict.gateway.stop()
        await lenient.gateway.stop()


async def test_services_endpoint_shows_instances_health_and_age(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upstreams: list[Upstream],
    session: aiohttp.ClientSession,
) -> None:
    u0, u1, _ = upstreams
    consul.register("orders", "orders-0", u0.port, meta={"version": "2"}, tags=["blue"])
    consul.register("orders", "orders-1", u1.port, initial_status="critical")
    gw = await consul_gateway(consul, monkeypatch, routes_file(tmp_path, ORDERS))
    try:
        assert await gw.gateway.consul.wait_ready(10)  # type: ignore[union-attr]
        async with session.get(f"{gw.management_url}/actuator/gateway/services") as response:
            services = await response.json()
        orders = next(s for s in services if s["service"] == "orders")
        assert orders["source"] == "consul"
        assert orders["healthy"] == 1
        assert orders["snapshotAgeSeconds"] is not None
        by_id = {i["instanceId"].split("@")[0]: i for i in orders["instances"]}
        assert all("@" in i["instanceId"] for i in orders["instances"])  # id@node
        assert by_id["orders-0"]["health"] == "passing"
        assert by_id["orders-0"]["routable"] is True
        assert by_id["orders-0"]["metadata"] == {"version": "2"}
        assert by_id["orders-0"]["tags"] == ["blue"]
        assert by_id["orders-1"]["health"] == "critical"
        assert by_id["orders-1"]["routable"] is False
        async with session.get(f"{gw.management_url}/actuator/health/readiness") as response:
            readiness = await response.json()
        assert response.status == 200
        assert readiness["details"]["source"] == "consul"
        assert readiness["details"]["error"] is None
    finally:
        await gw.gateway.stop()


async def test_routes_in_kv_apply_merge_by_id_and_bad_documents_keep_the_last_good(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upstreams: list[Upstream],
    session: aiohttp.ClientSession,
) -> None:
    u0, u1, u2 = upstreams
    file_routes = f"""
    routes:
      - id: shared
        uri: {u0.url}
        predicates: [Path=/shared/**]
      - id: file-only
        uri: {u0.url}
        predicates: [Path=/file/**]
    """
    kv_routes = {
        "routes": [
            {"id": "shared", "uri": u1.url, "predicates": ["Path=/shared/**"]},
            {"id": "kv-only", "uri": u2.url, "predicates": ["Path=/kv/**"]},
        ]
    }
    consul.kv_put("meshgate/routes", json.dumps(kv_routes))
    gw = await consul_gateway(
        consul,
        monkeypatch,
        routes_file(tmp_path, file_routes),
        consul_routes_key="meshgate/routes",
    )
    try:
        readiness = f"{gw.management_url}/actuator/health/readiness"
        await becomes(lambda: status_of(session, readiness), 200, "ready")
        assert await served_by(session, f"{gw.url}/shared/a") == "u1"  # KV wins by id
        assert await served_by(session, f"{gw.url}/file/a") == "u0"
        assert await served_by(session, f"{gw.url}/kv/a") == "u2"

        # A broken document: nothing changes, the error is on the actuator.
        consul.kv_put("meshgate/routes", "routes:\n  - id: broken\n    predicates: [Nope=1]\n")

        async def error_shown() -> Any:
            async with session.get(f"{gw.management_url}/actuator/health") as response:
                health = await response.json()
            return health["components"]["routes"]["details"].get("lastError")

        error = await eventually(error_shown, "the KV error on /actuator/health")
        assert "consul:meshgate/routes" in error
        assert "Nope" in error
        assert await served_by(session, f"{gw.url}/kv/a") == "u2"
        refresh = f"{gw.management_url}/actuator/gateway/refresh"
        async with session.post(refresh) as response:
            assert response.status == 400
            assert "Nope" in (await response.json())["message"]
        assert await served_by(session, f"{gw.url}/kv/a") == "u2"

        # A good one again, then the key removed: back to the file's routes alone.
        kv_routes["routes"][1]["predicates"] = ["Path=/kv2/**"]
        consul.kv_put("meshgate/routes", json.dumps(kv_routes))
        await becomes(lambda: served_by(session, f"{gw.url}/kv2/a"), "u2", "kv2")
        assert await status_of(session, f"{gw.url}/kv/a") == 404
        consul.kv_delete("meshgate/routes")

        async def file_routes_only() -> bool:
            return await served_by(session, f"{gw.url}/shared/a") == "u0"

        await eventually(file_routes_only, "KV routes removed")
        assert await status_of(session, f"{gw.url}/kv2/a") == 404
    finally:
        await gw.gateway.stop()


async def test_tag_routes_and_the_locator_follow_the_catalog(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    upstreams: list[Upstream],
    session: aiohttp.ClientSession,
) -> None:
    u0, u1, _ = upstreams
    gw = await consul_gateway(consul, monkeypatch, None, discovery_locator_enabled=True)
    try:
        consul.register("billing", "billing-0", u0.port, tags=["urlprefix-/pay strip=/pay"])
        consul.register("search", "search-0", u1.port)
        await becomes(lambda: served_by(session, f"{gw.url}/pay/x"), "u0", "tag route")
        # The catalog may arrive in two updates (billing, then search): wait for each.
        await becomes(lambda: served_by(session, f"{gw.url}/search/q"), "u1", "locator route")

        async with session.get(f"{gw.url}/pay/abc") as response:
            echoed = await response.json()
        assert echoed["path"] == "/abc"  # strip=/pay

        consul.deregister("billing-0")
        consul.deregister("search-0")

        async def gone() -> bool:
            return await status_of(session, f"{gw.url}/pay/x") == 404 and (
                await status_of(session, f"{gw.url}/search/q") == 404
            )

        await eventually(gone, "routes removed with their services")
    finally:
        await gw.gateway.stop()


async def test_service_ids_compare_case_insensitively_as_consul_does(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upstreams: list[Upstream],
    session: aiohttp.ClientSession,
) -> None:
    # Registered as orders-svc, routed to as Orders-Svc: Consul's catalog doesn't tell them
    # apart, so neither may the gateway (this once answered 503).
    consul.register(
        "orders-svc", "orders-svc-0", upstreams[0].port, ttl="30s", initial_status="passing"
    )
    routes = "routes:\n  - id: orders\n    uri: lb://Orders-Svc\n    predicates: [Path=/o/**]\n"
    gw = await consul_gateway(consul, monkeypatch, routes_file(tmp_path, routes))
    try:
        assert await gw.gateway.consul.wait_ready(10)  # type: ignore[union-attr]
        await becomes(lambda: served_by(session, f"{gw.url}/o/1"), "u0", "u0 serving")
    finally:
        await gw.gateway.stop()


async def test_a_service_named_only_by_set_request_uri_is_watched(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upstreams: list[Upstream],
    session: aiohttp.ClientSession,
) -> None:
    # No route's URI names "search": only the filter does, so discovery must learn of it
    # from the filter, and readiness wait for it. (Learnt from the first request instead,
    # that request answered 503.)
    consul.register("search", "search-0", upstreams[1].port, ttl="30s", initial_status="passing")
    routes = """
    routes:
      - id: retarget
        uri: no://op
        predicates: [Path=/s/**]
        filters: ['SetRequestUri=lb://search']
    """
    gw = await consul_gateway(consul, monkeypatch, routes_file(tmp_path, routes))
    try:
        assert await gw.gateway.consul.wait_ready(10)  # type: ignore[union-attr]
        assert await served_by(session, f"{gw.url}/s/q") == "u1"  # the very first request
    finally:
        await gw.gateway.stop()
