"""SCG 5.0.4 factories through the running gateway, against real upstreams on 127.0.0.1:
XForwardedRemoteAddr, RewriteRequestParameter, RewriteResponseHeader's four-token shortcut,
SetStatus with ``set-status.original-status-header-name``, CircuitBreaker's ``routeId``, and the
factories meshgate refuses.

What each test expects was first observed on the real SCG 5.0.4 with the same route.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway.config.schema import (
    FilterDefinition,
    FilterSettings,
    GatewayConfig,
    PredicateDefinition,
    RouteDefinition,
    SpringSettings,
)
from gateway.errors import ConfigError
from gateway.filters.catalog import builtin_filters
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.builder import build_routes
from tests.conftest import MakeGateway
from tests.support.echoed import get
from tests.support.ports import free_port
from tests.support.raw_http import exchange_raw, status_of
from tests.support.upstream import Upstream

# -- XForwardedRemoteAddr ----------------------------------------------------------------------


async def test_xforwarded_remote_addr_matches_the_last_forwarded_entry(
    upstream: Upstream,
    upstream_b: Upstream,
    make_gateway: MakeGateway,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: internal
            uri: {upstream.url}
            predicates:
              - Path=/x/**
              - XForwardedRemoteAddr=10.0.0.0/8
          - id: local
            uri: {upstream.url}
            predicates:
              - Path=/local/**
              - XForwardedRemoteAddr=127.0.0.1
          - id: others
            uri: {upstream_b.url}
            order: 10
            predicates:
              - Path=/**
        """
    )

    async def answered_by(path: str, *forwarded: str) -> str | None:
        headers = CIMultiDict(("X-Forwarded-For", value) for value in forwarded)
        return (await get(session, f"{gw.url}{path}", headers=headers)).upstream

    assert await answered_by("/x/1", "10.1.2.3") == "a"
    assert await answered_by("/x/1", "192.168.0.1, 10.1.2.3") == "a"
    assert await answered_by("/x/1", "10.1.2.3, 192.168.0.1") == "b"  # the proxy saw 192.168.0.1
    assert await answered_by("/x/1", "10.1") == "a"  # Java reads it as 10.0.0.1
    assert await answered_by("/x/1") == "b"  # no header: the peer, 127.0.0.1
    # Two X-Forwarded-For lines: SCG trusts neither and tests the peer.
    assert await answered_by("/x/1", "10.1.2.3", "10.1.2.4") == "b"
    assert await answered_by("/local/x", "10.1.2.3", "10.1.2.4") == "a"
    assert await answered_by("/local/x") == "a"
    assert await answered_by("/local/x", "10.1.2.3") == "b"


async def test_xforwarded_remote_addr_refuses_max_trusted_index(make_gateway: MakeGateway) -> None:
    config = """
        routes:
          - id: internal
            uri: http://127.0.0.1:9
            predicates:
              - name: XForwardedRemoteAddr
                args:
                  sources: 10.0.0.0/8
                  maxTrustedIndex: 2
        """
    with pytest.raises(ConfigError) as caught:
        await make_gateway(config)
    assert "routes[0] (internal) predicates[0] (XForwardedRemoteAddr): argument " in str(
        caught.value
    )
    assert "'maxTrustedIndex': SCG can't set it from configuration" in str(caught.value)


# -- RewriteRequestParameter -------------------------------------------------------------------


async def test_rewrite_request_parameter(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: rewrite
            uri: {upstream.url}
            predicates:
              - Path=/rrp/**
            filters:
              - RewriteRequestParameter=a, new value&x+/y~z
        """
    )
    value = "new%20value%26x%2B%2Fy~z"
    cases = {
        "b=2&a=1&c=3&a=4": f"b=2&c=3&a={value}",
        "b=x+y&c=%2F&d=%41&e&f=&a=z": f"b=x%20y&c=%2F&d=A&e&f=&a={value}",
        "c=1&b=2&c=3": "c=1&c=3&b=2",
    }
    for query, sent in cases.items():
        # sent as written: yarl would otherwise normalise the very query under test
        url = URL(f"{gw.url}/rrp/a%20b?{query}", encoded=True)
        async with session.get(url) as reply:
            report = await reply.json()
        assert report["raw_path"] == f"/rrp/a%20b?{sent}", query
    plain = await get(session, f"{gw.url}/rrp/p")
    assert plain.report["raw_path"] == "/rrp/p"


async def test_rewrite_request_parameter_malformed_escape_is_400(
    upstream: Upstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: rewrite
            uri: {upstream.url}
            filters:
              - RewriteRequestParameter=a, b
        """
    )
    reply = await exchange_raw(
        gw.port, b"GET /p?b=%zz&a=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status_of(reply) == 400
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert body["status"] == 400
    assert "percent-encoding" in body["message"]


# -- RewriteResponseHeader's documented four-token shortcut -----------------------------------


async def _password(request: web.Request) -> web.Response:
    response = web.Response(text="ok")
    response.headers.add("X-Response-Red", "/42?user=ford&password=omg!what&flag=true")
    response.headers.add("X-Response-Red", "password=two")
    return response


@pytest.fixture
async def password_upstream() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", _password)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_rewrite_response_header_four_token_shortcut(
    password_upstream: str, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: rewriteresponseheader_route
            uri: {password_upstream}
            filters:
              - RewriteResponseHeader=X-Response-Red, , password=[^&]+, password=***
        """
    )
    answer = await get(session, f"{gw.url}/x")
    assert answer.headers.getall("X-Response-Red") == [
        "/42?user=ford&password=***&flag=true",
        "password=***",
    ]
    async with session.get(f"{gw.management_url}/actuator/gateway/routedefinitions") as reply:
        (definition,) = await reply.json()
    assert definition["filters"][0]["args"] == {
        "_genkey_0": "X-Response-Red",
        "_genkey_1": "password=[^&]+",
        "_genkey_2": "password=***",
    }


# -- SetStatus and set-status.original-status-header-name ------------------------------------


async def test_set_status_sends_the_original_status_header(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(None)

    def route(route_id: str, pattern: str, status: str) -> RouteDefinition:
        return RouteDefinition(
            id=route_id,
            uri=upstream.url,
            predicates=(PredicateDefinition("Path", {"patterns": [pattern]}),),
            filters=(FilterDefinition("SetStatus", {"status": status}),),
        )

    # The document's spring settings, as the reader makes them from
    # spring.cloud.gateway.server.webflux.set-status.original-status-header-name.
    config = GatewayConfig(
        routes=(route("ss", "/status/**", "401"), route("same", "/same/**", "200")),
        spring=SpringSettings(filters=FilterSettings(original_status_header="X-Original-Status")),
    )
    routes = build_routes(config, builtin_predicates(), builtin_filters())
    gw.gateway.dispatcher.table = gw.gateway.stack.table(routes)

    changed = await get(session, f"{gw.url}/status/201")
    assert (changed.status, changed.headers.getall("X-Original-Status")) == (401, ["[201]"])
    assert json.loads(changed.body) == {"status": 201}  # the upstream's body, unchanged
    kept = await get(session, f"{gw.url}/same/x")
    assert (kept.status, kept.headers.getall("X-Original-Status")) == (200, ["[200]"])


# -- CircuitBreaker routeId --------------------------------------------------------------------


async def test_circuit_breaker_is_named_by_the_route_not_the_written_route_id(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: cbroute
            uri: http://127.0.0.1:{free_port()}
            predicates:
              - Path=/cb/**
            filters:
              - name: CircuitBreaker
                args:
                  routeId: written-id
                  fallbackUri: forward:/fb
          - id: fb
            uri: {upstream.url}
            predicates:
              - Path=/fb
        """
    )
    answer = await get(session, f"{gw.url}/cb/x")
    assert (answer.status, answer.upstream, answer.path) == (200, "a", "/fb")
    breakers = gw.gateway.runtimes.breakers.snapshot()
    assert "cbroute" in breakers
    assert "written-id" not in breakers
    async with session.get(f"{gw.management_url}/actuator/gateway/routes/cbroute") as reply:
        shown = await reply.json()
    assert shown["filters"] == [
        "[[SpringCloudCircuitBreakerResilience4JFilterFactory name = '', "
        "fallback = forward:/fb], order = 1]"
    ]


# -- refused factories -------------------------------------------------------------------------


async def test_a_refused_factory_stops_the_gateway_from_loading(make_gateway: MakeGateway) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_gateway(
            """
            routes:
              - id: web
                uri: http://127.0.0.1:9
                filters:
                  - TokenRelay=
            """
        )
    assert "routes[0] (web) filters[0] (TokenRelay): TokenRelay is not supported: meshgate " in (
        str(caught.value)
    )


def test_validate_reports_every_refused_factory(tmp_path: Path) -> None:
    path = tmp_path / "application.yml"
    path.write_text(
        """\
spring:
  cloud:
    gateway:
      server:
        webflux:
          routes:
            - id: web
              uri: http://127.0.0.1:9
              predicates:
                - Version=1.1
              filters:
                - SaveSession
                - name: ModifyResponseBody
                  args: {inClass: String}
"""
    )
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    stderr = result.stderr
    assert result.returncode == 2, stderr
    assert "predicates[0] (Version): Version is not supported: meshgate has no API" in stderr
    assert "filters[0] (SaveSession): SaveSession is not supported: meshgate has no" in stderr
    assert "filters[1] (ModifyResponseBody): ModifyResponseBody is not supported: " in stderr
    assert "did you mean" not in stderr
