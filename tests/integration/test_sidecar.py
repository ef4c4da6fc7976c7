"""Sidecar mode as a real process against a real Consul agent: the proxy port fronts a local app
and registers it (its check through the sidecar), and the loopback outbound port routes the
app's own calls by service name — as a proxy (absolute-form targets) or by Host — with the
balancer, lanes from the app's baggage and trace propagation; an unknown service is a 503
naming it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.consul import ConsulAgent, wait_until
from tests.support.gateway import GatewayProcess, spawn_gateway
from tests.support.ports import free_port
from tests.support.raw_http import exchange_raw, status_of
from tests.support.upstream import Upstream, serve, start_upstream

pytestmark = pytest.mark.slow

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@dataclass
class App:
    """The local app behind the sidecar: answers every path with what it got, and a health
    path whose answer the test switches."""

    port: int = 0
    healthy: bool = True
    health_headers: list[dict[str, str]] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start_app() -> App:
    app = App()

    async def health(request: web.Request) -> web.Response:
        app.health_headers.append({k.lower(): v for k, v in request.headers.items()})
        return web.Response(status=200 if app.healthy else 500, text="ok")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {"app": "legacy", "path": request.path_qs, "headers": dict(request.headers)}
        )

    web_app = web.Application()
    web_app.router.add_get("/health", health)
    web_app.router.add_route("*", "/{tail:.*}", echo)
    app.runner, app.port = await serve(web_app)
    return app


@pytest.fixture
async def app() -> AsyncIterator[App]:
    started = await start_app()
    yield started
    assert started.runner is not None
    await started.runner.cleanup()


@pytest.fixture
async def billing(consul: ConsulAgent) -> AsyncIterator[dict[str, Upstream]]:
    started = {name: await start_upstream(name) for name in ("billing-a", "billing-b", "canary")}
    consul.register("billing", "billing-a", started["billing-a"].port)
    consul.register("billing", "billing-b", started["billing-b"].port)
    consul.register("billing", "billing-canary", started["canary"].port, meta={"lane": "canary"})
    yield started
    for upstream in started.values():
        await upstream.runner.cleanup()


def sidecar_env(consul: ConsulAgent, app: App, outbound: int, **extra: str) -> dict[str, str]:
    return {
        "GATEWAY_MODE": "sidecar",
        "GATEWAY_SIDECAR_APP": app.url,
        "GATEWAY_OUTBOUND_PORT": str(outbound),
        "CONSUL_HTTP_ADDR": consul.http_addr,
        "GATEWAY_SERVICE_NAME": "legacy",
        "GATEWAY_SERVICE_ID": "legacy-1",
        "GATEWAY_CHECK_INTERVAL": "1s",
        "GATEWAY_CHECK_TIMEOUT": "1s",
        "GATEWAY_DEREGISTER_GRACE": "1s",
        "GATEWAY_CONSUL_WAIT": "5s",
        **extra,
    }


@pytest.fixture
async def sidecar(
    consul: ConsulAgent, app: App, billing: dict[str, Upstream], tmp_path: Path
) -> AsyncIterator[tuple[GatewayProcess, int]]:
    outbound = free_port()
    process = await asyncio.to_thread(
        spawn_gateway, None, tmp_path, **sidecar_env(consul, app, outbound)
    )
    yield process, outbound
    await asyncio.to_thread(process.stop)


def check_status(consul: ConsulAgent) -> str | None:
    checks = [c for c in consul.health_checks("legacy") if c.get("ServiceID") == "legacy-1"]
    return checks[0]["Status"] if checks else None


async def wait_for(consul: ConsulAgent, status: str, timeout: float = 15) -> None:
    await asyncio.to_thread(
        wait_until, lambda: check_status(consul) == status, timeout=timeout, what=status
    )


async def test_inbound_reaches_the_app_which_is_registered_and_checked_through_the_sidecar(
    consul: ConsulAgent, app: App, sidecar: tuple[GatewayProcess, int]
) -> None:
    process, _ = sidecar
    async with aiohttp.ClientSession() as session:
        status, body = await call(session, f"{process.url}/orders/7?x=1")
    assert status == 200
    assert body["app"] == "legacy"
    assert body["path"] == "/orders/7?x=1"
    assert body["headers"]["X-Forwarded-For"] == "127.0.0.1"  # it came through the sidecar

    await wait_for(consul, "passing")
    [entry] = consul.catalog_service("legacy")
    assert entry["ServiceID"] == "legacy-1"
    assert entry["ServicePort"] == process.port  # the sidecar's port, not the app's
    assert entry["ServiceAddress"] == "127.0.0.1"
    # The agent's checks reached the app's health path through the sidecar (which adds
    # X-Request-Id and X-Forwarded-For; Consul's own client sends neither).
    assert app.health_headers
    assert all("x-request-id" in h and "x-forwarded-for" in h for h in app.health_headers)

    app.healthy = False
    await wait_for(consul, "critical")
    app.healthy = True
    await wait_for(consul, "passing")

    process.signal(signal.SIGTERM)
    await asyncio.to_thread(
        wait_until, lambda: not consul.catalog_service("legacy"), timeout=10, what="deregistered"
    )
    assert process.process.poll() is None, "deregistration must come before the exit"
    assert await asyncio.to_thread(process.process.wait, 20) == 0


async def call(
    session: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async with session.get(url, **kwargs) as response:
        return response.status, await response.json()


async def test_outbound_routes_the_apps_calls_by_service_name(
    sidecar: tuple[GatewayProcess, int],
) -> None:
    _, outbound = sidecar
    proxy = f"http://127.0.0.1:{outbound}"
    async with aiohttp.ClientSession() as session:
        # As HTTP_PROXY makes a client send it: an absolute-form target, the host a service.
        seen = []
        for _ in range(4):
            status, body = await call(session, "http://billing/invoices/7?full=1", proxy=proxy)
            assert status == 200, body
            assert body["path"] == "/invoices/7"
            assert body["query"] == "full=1"
            seen.append(body["upstream"])
        assert sorted(seen) == ["billing-a", "billing-a", "billing-b", "billing-b"]
        assert seen[0] != seen[1] and seen[1] != seen[2]  # round robin, never the canary

        # Straight to the port, the service in Host.
        seen = []
        for _ in range(2):
            status, body = await call(session, f"{proxy}/invoices/8", headers={"Host": "billing"})
            assert status == 200, body
            assert body["path"] == "/invoices/8"
            seen.append(body["upstream"])
        assert sorted(seen) == ["billing-a", "billing-b"]

        # The app's lane (baggage) picks the canary, and its trace goes on.
        status, body = await call(
            session,
            "http://billing/invoices/9",
            proxy=proxy,
            headers={"baggage": "lane=canary,user=7", "traceparent": TRACEPARENT},
        )
        assert status == 200, body
        assert body["upstream"] == "canary"
        headers = {k.lower(): v for k, v in body["headers"]}
        assert TRACE_ID in headers["traceparent"]
        assert "lane=canary" in headers["baggage"] and "user=7" in headers["baggage"]

        # A name the registry has no instance of: 503, the gateway's JSON error naming it.
        async with session.get("http://nosuch/x", proxy=proxy) as response:
            assert response.status == 503
            error = await response.json()
        assert error["status"] == 503
        assert "nosuch" in error["message"]


async def test_absolute_form_is_routed_on_its_authority(
    sidecar: tuple[GatewayProcess, int],
) -> None:
    _, outbound = sidecar
    # HTTP/1.0 without Host: the target's authority names the service.
    answer = await exchange_raw(outbound, b"GET http://billing/raw HTTP/1.0\r\n\r\n")
    assert status_of(answer) == 200, answer
    assert b'"path": "/raw"' in answer or b'"path":"/raw"' in answer
    # A Host that contradicts the target: refused, never routed on either.
    answer = await exchange_raw(
        outbound, b"GET http://billing/raw HTTP/1.1\r\nHost: nosuch\r\nConnection: close\r\n\r\n"
    )
    assert status_of(answer) == 400, answer
    # No service named at all (an IP literal is not a service).
    answer = await exchange_raw(
        outbound, b"GET /raw HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    assert status_of(answer) == 400, answer


async def test_outbound_listens_on_loopback_only(app: App, tmp_path: Path) -> None:
    outbound = free_port()
    process = await asyncio.to_thread(
        spawn_gateway,
        None,
        tmp_path,
        GATEWAY_MODE="sidecar",
        GATEWAY_SIDECAR_APP=app.url,
        GATEWAY_OUTBOUND_PORT=str(outbound),
        GATEWAY_DISCOVERY="static",
        GATEWAY_HOST="0.0.0.0",  # the proxy port everywhere; the outbound port still not
    )
    try:
        # 127.0.0.2 is this host too (all of 127/8 is loopback): only a wildcard listener, or
        # one bound to it, answers there.
        assert _connects("127.0.0.2", process.port)
        assert _connects("127.0.0.1", outbound)
        assert not _connects("127.0.0.2", outbound)
    finally:
        await asyncio.to_thread(process.stop)


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("how", ["command", "variable"])
def test_missing_app_is_a_start_up_error_naming_the_variable(how: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "CONSUL_"))}
    env.update(GATEWAY_PORT=str(free_port()), GATEWAY_MANAGEMENT_PORT=str(free_port()))
    argv = [sys.executable, "-m", "gateway"]
    if how == "command":
        argv.append("sidecar")
    else:
        env["GATEWAY_MODE"] = "sidecar"
    done = subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False)
    assert done.returncode == 2, done
    assert b"GATEWAY_SIDECAR_APP" in done.stderr + done.stdout
