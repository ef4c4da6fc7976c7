"""A realistic Spring application.yml, as a Spring Cloud Gateway user has it, run by the real
process: each of its settings is checked in force."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.support.echoed import call, get
from tests.support.gateway import GatewayProcess, spawn_gateway
from tests.support.ports import free_port
from tests.support.upstream import Upstream, start_upstream

pytestmark = pytest.mark.asyncio(loop_scope="module")

APPLICATION_YML = """\
server:
  port: {port}
  shutdown: graceful
management:
  server:
    port: {management_port}
  endpoints.web.exposure.include: "*"
logging:
  level:
    org.springframework.cloud.gateway: DEBUG
services:
  Orders-Svc:
    - {{host: 127.0.0.1, port: {orders}}}
  catalog:
    - {{host: 127.0.0.1, port: {catalog}}}
spring:
  application:
    name: edge-gateway
  cloud:
    gateway:
      server:
        webflux:
          trusted-proxies: 127\\.0\\.0\\.1
          httpclient:
            connect-timeout: 1000
            response-timeout: 500ms
          discovery:
            locator:
              enabled: true
              lower-case-service-id: true
          set-status:
            original-status-header-name: X-Original-Status
          filter:
            secure-headers:
              frame-options: SAMEORIGIN
          globalcors:
            cors-configurations:
              '[/api/**]':
                allowedOrigins: "https://app.example.org"
                allowedMethods: [GET, POST]
                allowedHeaders: "*"
                maxAge: 3600
          default-filters:
            - AddResponseHeader=X-Gateway, meshgate
            - DedupeResponseHeader=Access-Control-Allow-Origin, RETAIN_FIRST
          routes:
            - id: orders
              uri: lb://Orders-Svc
              order: 1
              predicates:
                - Path=/api/orders/**
                - Method=GET,POST,OPTIONS
              filters:
                - StripPrefix=1
                - AddRequestHeader=X-Request-Source, edge
                - SecureHeaders
                - name: Retry
                  args:
                    retries: 2
                    methods: GET
            - id: slow
              uri: lb://catalog
              predicates:
                - Path=/delay/**
            - id: reports
              uri: http://127.0.0.1:{catalog}
              predicates:
                - Path=/reports/**
              filters:
                - RewritePath=/reports/?(?<rest>.*), /$\\{{rest}}
              metadata:
                response-timeout: 3000
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstreams() -> AsyncIterator[tuple[Upstream, Upstream]]:
    orders, catalog = await start_upstream("orders"), await start_upstream("catalog")
    yield orders, catalog
    for upstream in (orders, catalog):
        await upstream.runner.cleanup()


@pytest.fixture(scope="module")
def gateway(
    upstreams: tuple[Upstream, Upstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    orders, catalog = upstreams
    ports = (free_port(), free_port())
    directory = tmp_path_factory.mktemp("spring")
    path: Path = directory / "application.yml"
    path.write_text(
        APPLICATION_YML.format(
            port=ports[0], management_port=ports[1], orders=orders.port, catalog=catalog.port
        )
    )
    process = spawn_gateway(path, directory, ports)
    yield process
    assert process.stop() == 0, process.log()


@pytest_asyncio.fixture(loop_scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_server_and_management_ports_come_from_the_document(
    gateway: GatewayProcess, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{gateway.management_url}/actuator/health") as resp:
        assert resp.status == 200
    assert (await get(session, f"{gateway.url}/api/orders/1")).status == 200


async def test_routes_with_their_filters_and_the_default_filters(
    gateway: GatewayProcess, session: aiohttp.ClientSession
) -> None:
    answer = await get(session, f"{gateway.url}/api/orders/items?x=1")
    assert (answer.upstream, answer.path, answer.query) == ("orders", "/orders/items", "x=1")
    assert answer.request_headers["X-Request-Source"] == "edge"
    assert answer.headers["X-Gateway"] == "meshgate"
    assert answer.headers["X-Frame-Options"] == "SAMEORIGIN"  # filter.secure-headers
    assert (await call(session, "DELETE", f"{gateway.url}/api/orders/1")).status == 404
    report = await get(session, f"{gateway.url}/reports/daily")
    assert (report.upstream, report.path) == ("catalog", "/daily")


async def test_httpclient_response_timeout_and_a_routes_own(
    gateway: GatewayProcess, session: aiohttp.ClientSession
) -> None:
    assert (await get(session, f"{gateway.url}/delay/1")).status == 504
    assert (await get(session, f"{gateway.url}/reports/delay/1")).status == 200


async def test_trusted_proxies(gateway: GatewayProcess, session: aiohttp.ClientSession) -> None:
    answer = await get(
        session, f"{gateway.url}/api/orders/x", headers={"X-Forwarded-For": "198.51.100.4"}
    )
    assert answer.request_headers["X-Forwarded-For"] == "198.51.100.4,127.0.0.1"


async def test_globalcors(gateway: GatewayProcess, session: aiohttp.ClientSession) -> None:
    preflight = {
        "Origin": "https://app.example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-Trace",
    }
    answer = await call(session, "OPTIONS", f"{gateway.url}/api/orders/1", headers=preflight)
    assert answer.status == 200 and answer.upstream is None  # answered, not forwarded
    assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example.org"
    assert answer.headers["Access-Control-Max-Age"] == "3600"
    evil = {**preflight, "Origin": "https://evil.example"}
    assert (
        await call(session, "OPTIONS", f"{gateway.url}/api/orders/1", headers=evil)
    ).status == 403
    simple = await get(
        session, f"{gateway.url}/api/orders/1", headers={"Origin": "https://app.example.org"}
    )
    assert simple.headers["Access-Control-Allow-Origin"] == "https://app.example.org"
    assert "Origin" in simple.headers["Vary"]


async def test_discovery_locator(gateway: GatewayProcess, session: aiohttp.ClientSession) -> None:
    answer = await get(session, f"{gateway.url}/catalog/items")
    assert (answer.status, answer.upstream, answer.path) == (200, "catalog", "/items")
    # lower-case-service-id: the locator's path is lower case, its uri keeps the id
    answer = await get(session, f"{gateway.url}/orders-svc/items")
    assert (answer.status, answer.upstream, answer.path) == (200, "orders", "/items")


async def test_meshgate_validate_reads_the_same_document(tmp_path: Path) -> None:
    import asyncio
    import sys

    path = tmp_path / "application.yml"
    text = APPLICATION_YML.format(port=1, management_port=2, orders=3, catalog=4)
    pool = textwrap.indent("pool.max-connections: 5", " " * 12)
    path.write_text(text.replace("response-timeout: 500ms", f"response-timeout: 500ms\n{pool}"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "validate",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert (
        f"{path}: spring.cloud.gateway.server.webflux.httpclient.pool.max-connections: "
        "not supported: " in stderr.decode()
    )
