"""The gateway as a mesh member, as a real process against a real agent: it registers itself with
a passing check, keeps routing through an agent outage, registers again when the agent comes
back, and leaves the catalog before it exits on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.consul import ConsulAgent, wait_until
from tests.support.gateway import GatewayProcess, spawn_gateway
from tests.support.upstream import Upstream, start_upstream

pytestmark = pytest.mark.slow


def member_env(consul: ConsulAgent, **extra: str) -> dict[str, str]:
    return {
        "CONSUL_HTTP_ADDR": consul.http_addr,
        "GATEWAY_SERVICE_ID": "gw-1",
        "GATEWAY_SERVICE_TAGS": "edge,public",
        "GATEWAY_SERVICE_META": "team=platform",
        "GATEWAY_CHECK_INTERVAL": "1s",
        "GATEWAY_DEREGISTER_GRACE": "1s",
        "GATEWAY_CONSUL_WAIT": "5s",
        **extra,
    }


def registered_passing(consul: ConsulAgent) -> dict[str, Any] | None:
    checks = [c for c in consul.health_checks("meshgate") if c.get("ServiceID") == "gw-1"]
    if checks and all(c["Status"] == "passing" for c in checks):
        return checks[0]
    return None


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    started = await start_upstream("u0")
    yield started
    await started.runner.cleanup()


def test_registered_with_a_passing_check_and_gone_before_exit(
    consul: ConsulAgent, tmp_path: Path
) -> None:
    gateway = spawn_gateway(None, tmp_path, **member_env(consul))
    try:
        wait_until(lambda: registered_passing(consul), timeout=15, what="a passing registration")
        [entry] = consul.catalog_service("meshgate")
        assert entry["ServiceID"] == "gw-1"
        assert entry["ServicePort"] == gateway.port
        assert set(entry["ServiceTags"]) == {"edge", "public"}
        assert entry["ServiceMeta"]["team"] == "platform"
        assert entry["ServiceMeta"]["version"]

        gateway.signal(signal.SIGTERM)
        wait_until(lambda: not consul.catalog_service("meshgate"), timeout=10, what="deregistered")
        assert gateway.process.poll() is None, "deregistration must come before the exit"
        assert gateway.process.wait(20) == 0
    finally:
        gateway.stop()


async def test_routes_through_an_agent_outage_and_registers_again(
    consul: ConsulAgent, tmp_path: Path, upstream: Upstream
) -> None:
    routes = tmp_path / "routes.yml"
    routes.write_text(
        "routes:\n  - id: orders\n    uri: lb://orders\n    predicates: [Path=/o/**]\n"
    )
    consul.register("orders", "orders-0", upstream.port)
    gateway: GatewayProcess = await asyncio.to_thread(
        spawn_gateway, routes, tmp_path, **member_env(consul)
    )
    url = f"{gateway.url}/o/x"
    readiness = f"{gateway.management_url}/actuator/health/readiness"

    def ask(target: str) -> tuple[int, bytes]:
        return get(target)

    try:
        await asyncio.to_thread(wait_until, lambda: registered_passing(consul), timeout=15)
        assert (await asyncio.to_thread(ask, url))[0] == 200

        consul.stop()
        outage_end = time.monotonic() + 30
        statuses: list[int] = []
        while time.monotonic() < outage_end:
            statuses.append((await asyncio.to_thread(ask, url))[0])
            await asyncio.sleep(0.5)
        assert statuses and set(statuses) == {200}, statuses  # last-known-good
        status, body = await asyncio.to_thread(ask, readiness)
        details = json.loads(body)["details"]
        assert status == 200  # still ready: known services keep working
        assert details["error"]
        assert details["snapshotAgeSeconds"] > 25

        consul.start()  # -dev: comes back empty, as after losing its state
        consul.register("orders", "orders-0", upstream.port)
        await asyncio.to_thread(
            wait_until, lambda: registered_passing(consul), timeout=20, what="re-registration"
        )

        def watches_resumed() -> bool:
            status, body = get(readiness)
            return status == 200 and json.loads(body)["details"]["error"] is None

        await asyncio.to_thread(wait_until, watches_resumed, timeout=15, what="watches resumed")
        assert (await asyncio.to_thread(ask, url))[0] == 200
    finally:
        await asyncio.to_thread(gateway.stop)
