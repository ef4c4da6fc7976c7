"""CORS through the running gateway, against a real upstream on 127.0.0.1: route
``metadata.cors`` and Spring's ``globalcors``, then the same ``application.yml`` sent the same
requests through a real SCG 5.0.4 and through meshgate (skipped, saying why, where Java or the
peer jar is missing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.errors import ConfigError
from tests.conftest import MakeGateway
from tests.support.gateway import start_gateway
from tests.support.ports import free_port
from tests.support.scg import scg_unavailable, start_scg

VARY = [
    ("vary", "Origin"),
    ("vary", "Access-Control-Request-Method"),
    ("vary", "Access-Control-Request-Headers"),
]


@dataclass
class Upstream:
    port: int = 0
    received: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


_UPSTREAM = web.AppKey("upstream", Upstream)


async def _answer(request: web.Request) -> web.Response:
    request.app[_UPSTREAM].received.append((request.method, request.path))
    response = web.Response(text=f"up {request.path}")
    if "vary" in request.path:
        response.headers.add("Vary", "Accept-Encoding")
    if "acao" in request.path:
        response.headers.add("Access-Control-Allow-Origin", "https://up.example")
    return response


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """Answers everything with a small body and records what reached it (a preflight the
    gateway answers must not)."""
    record = Upstream()
    app = web.Application()
    app[_UPSTREAM] = record
    app.router.add_route("*", "/{tail:.*}", _answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    record.port = runner.addresses[0][1]
    yield record
    await runner.cleanup()


def cors_fields(response: aiohttp.ClientResponse) -> list[tuple[str, str]]:
    """The CORS part of a response, in wire order: Vary and Access-Control-*."""
    out = []
    for raw_name, raw_value in response.raw_headers:
        name = raw_name.decode("latin-1").lower()
        if name == "vary" or name.startswith("access-control-"):
            out.append((name, raw_value.decode("latin-1")))
    return out


async def preflight(
    session: aiohttp.ClientSession, url: str, origin: str, method: str, *requested: str
) -> aiohttp.ClientResponse:
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if requested:
        headers["Access-Control-Request-Headers"] = ", ".join(requested)
    async with session.options(url, headers=headers) as response:
        await response.read()
        return response


# -- route metadata.cors, in meshgate's own route document ---------------------------------------


async def test_route_cors_answers_preflights_refuses_and_decorates(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: api
            uri: {upstream.url}
            predicates: [Path=/api/**]
            metadata:
              cors:
                allowedOrigins: https://app.example
                allowedMethods: [GET, PUT]
                allowedHeaders: '*'
                exposedHeaders: [X-Total]
                allowCredentials: true
                maxAge: 30
        """
    )
    answered = await preflight(
        session, f"{gw.url}/api/items", "https://app.example", "PUT", "X-Token"
    )
    assert answered.status == 200
    assert cors_fields(answered) == [
        *VARY,
        ("access-control-allow-origin", "https://app.example"),
        ("access-control-allow-methods", "GET,PUT"),
        ("access-control-allow-headers", "X-Token"),
        ("access-control-expose-headers", "X-Total"),
        ("access-control-allow-credentials", "true"),
        ("access-control-max-age", "30"),
    ]
    assert upstream.received == []  # answered by the gateway

    refused = await preflight(session, f"{gw.url}/api/items", "https://evil.example", "GET")
    assert refused.status == 403
    assert cors_fields(refused) == VARY
    assert upstream.received == []

    async with session.get(
        f"{gw.url}/api/vary-acao", headers={"Origin": "https://app.example"}
    ) as response:
        assert response.status == 200
        assert await response.text() == "up /api/vary-acao"
        # The gateway's first, then the upstream's own (DedupeResponseHeader's use case).
        assert cors_fields(response) == [
            *VARY,
            ("access-control-allow-origin", "https://app.example"),
            ("access-control-expose-headers", "X-Total"),
            ("access-control-allow-credentials", "true"),
            ("vary", "Accept-Encoding"),
            ("access-control-allow-origin", "https://up.example"),
        ]
    assert upstream.received == [("GET", "/api/vary-acao")]

    async with session.delete(
        f"{gw.url}/api/items", headers={"Origin": "https://app.example"}
    ) as response:
        assert response.status == 403
        body = json.loads(await response.text())
        assert body["message"] == "Invalid CORS request: method 'DELETE' is not allowed"
    assert len(upstream.received) == 1


async def test_an_error_response_keeps_its_cors_headers(
    make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: dead
            uri: http://127.0.0.1:{free_port()}
            predicates: [Path=/dead/**]
            metadata:
              cors: {{allowedOrigins: https://app.example}}
        """
    )
    async with session.get(f"{gw.url}/dead/x", headers={"Origin": "https://app.example"}) as reply:
        assert reply.status == 502
        assert cors_fields(reply) == [
            *VARY,
            ("access-control-allow-origin", "https://app.example"),
        ]


async def test_a_bad_route_cors_is_refused_with_its_place(
    upstream: Upstream, make_gateway: MakeGateway, tmp_path: Path
) -> None:
    path = tmp_path / "routes.yml"
    path.write_text(
        f"""
routes:
  - id: api
    uri: {upstream.url}
    predicates: [Path=/api/**]
    metadata:
      cors:
        allowed-origins: https://app.example
"""
    )
    with pytest.raises(ConfigError) as caught:
        await start_gateway(path)
    assert (
        "routes[0] (api): metadata cors.allowed-origins: route metadata keys are read as "
        "written: use allowedOrigins"
    ) in str(caught.value)


async def test_without_any_cors_a_preflight_still_reaches_the_upstream(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    # meshgate differs here on purpose: SCG 5.0.4 answers every preflight itself (an empty
    # 200), so a service that does its own CORS could never answer one behind it.
    gw = await make_gateway(
        f"""
        routes:
          - id: api
            uri: {upstream.url}
            predicates: [Path=/api/**]
        """
    )
    reply = await preflight(session, f"{gw.url}/api/x", "https://app.example", "GET")
    assert reply.status == 200
    assert cors_fields(reply) == []
    assert upstream.received == [("OPTIONS", "/api/x")]


# -- globalcors in a Spring application.yml, and the same file through SCG -----------------------

APPLICATION_YML = """
spring:
  cloud:
    gateway:
      server:
        webflux:
          globalcors:
            cors-configurations:
              '[/g/**]':
                allowedOrigins: "https://a.example, https://b.example/"
                allowedMethods: GET,POST
                allowedHeaders: X-One
                exposedHeaders: X-Exp1, X-Exp2
                maxAge: 100
              '[/star/**]':
                allowedOrigins: '*'
                allowedMethods: '*'
                allowedHeaders: '*'
              '[/pat/**]':
                allowedOriginPatterns:
                  - 'https://*.example.com:[8080,8081]'
                allowCredentials: true
              '[/shared/**]':
                allowedOrigins: https://global.example
              '[/exact]':
                allowed-origins: https://a.example
          routes:
            - id: g
              uri: UPSTREAM
              predicates:
                - Path=/g/**,/star/**,/pat/**,/exact/**,/nocors/**
            - id: r1
              uri: UPSTREAM
              predicates:
                - Path=/r1/**
              metadata:
                cors:
                  allowedOrigins: https://r1.example
                  allowedMethods:
                    - GET
                    - PUT
                  allowedHeaders: '*'
                  allowCredentials: true
                  maxAge: 30
            - id: shared
              uri: UPSTREAM
              predicates:
                - Path=/shared/**
              metadata:
                cors:
                  allowedOrigins: https://route.example
"""

A = "https://a.example"
ASK = "Access-Control-Request-Method"
ASK_HEADERS = "Access-Control-Request-Headers"


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]


def case(method: str, path: str, **headers: str) -> Case:
    names = {"ask": ASK, "ask_headers": ASK_HEADERS}
    return Case(method, path, tuple((names.get(k, k.title()), v) for k, v in headers.items()))


# Each was checked by hand against SCG 5.0.4 too; the comment says what SCG does.
CASES = [
    case("OPTIONS", "/g/x", origin=A, ask="POST", ask_headers="x-one, X-Two"),  # partly allowed
    case("OPTIONS", "/g/x", origin=A, ask="POST", ask_headers="x-two"),  # 403
    case("OPTIONS", "/g/x", origin="https://B.EXAMPLE/", ask="GET"),  # echoed as sent
    case("OPTIONS", "/g/x", origin="https://c.example", ask="GET"),  # 403
    case("OPTIONS", "/g/x", origin=A, ask="PUT"),  # 403
    case("OPTIONS", "/g/x", origin=A),  # no preflight: an OPTIONS request, not allowed
    case("GET", "/g/vary", origin=A),  # forwarded; the upstream's Vary after the gateway's
    case("PUT", "/g/x", origin=A),  # 403, not forwarded
    case("GET", "/g/x"),  # not CORS: Vary only
    case("OPTIONS", "/g/x", host="a.example", origin="http://a.example", ask="PUT"),  # same
    case("GET", "/g/x", host="A.example", origin="http://a.example"),  # hosts: case matters
    case("GET", "/g/x", origin="null"),  # 403
    case("OPTIONS", "/star/x", origin="https://z.example", ask="PATCH", ask_headers="X-A,x-b"),
    case("OPTIONS", "/pat/x", origin="https://api.example.com:8081", ask="GET"),
    case("OPTIONS", "/pat/x", origin="https://api.example.com:9000", ask="GET"),  # 403
    case("OPTIONS", "/nocors/x", origin="https://k.example", ask="PUT"),  # empty 200
    case("GET", "/nocors/x", origin="https://k.example"),  # forwarded as it is
    case("OPTIONS", "/exact", origin=A, ask="GET"),  # GET,HEAD by default
    case("OPTIONS", "/exact/", origin=A, ask="GET"),  # no trailing-slash match: empty 200
    case("OPTIONS", "/r1/x", origin="https://r1.example", ask="PUT", ask_headers="X-Any"),
    case("GET", "/r1/acao", origin="https://r1.example"),  # both Allow-Origins
    case("OPTIONS", "/shared/x", origin="https://global.example", ask="GET"),  # route's wins
    case("OPTIONS", "/shared/x", origin="https://route.example", ask="GET"),
]


@dataclass(frozen=True)
class Seen:
    status: int
    cors: list[tuple[str, str]]
    body: bytes
    forwarded: bool


async def observe(
    session: aiohttp.ClientSession, base: str, upstream: Upstream, one: Case
) -> tuple[Seen, aiohttp.ClientResponse]:
    upstream.received.clear()
    async with session.request(one.method, base + one.path, headers=dict(one.headers)) as reply:
        body = await reply.read()
    return Seen(reply.status, cors_fields(reply), body, bool(upstream.received)), reply


async def test_globalcors_from_an_application_yml(
    upstream: Upstream, make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(APPLICATION_YML.replace("UPSTREAM", upstream.url))
    seen, _ = await observe(session, gw.url, upstream, CASES[0])
    assert seen == Seen(
        200,
        [
            *VARY,
            ("access-control-allow-origin", A),
            ("access-control-allow-methods", "GET,POST"),
            ("access-control-allow-headers", "x-one"),
            ("access-control-expose-headers", "X-Exp1, X-Exp2"),
            ("access-control-max-age", "100"),
        ],
        b"",
        False,
    )
    # The route's own metadata.cors took /shared/** from the global pattern.
    seen, _ = await observe(session, gw.url, upstream, CASES[-2])
    assert (seen.status, seen.forwarded) == (403, False)
    seen, _ = await observe(session, gw.url, upstream, CASES[-1])
    assert seen.status == 200
    assert ("access-control-allow-origin", "https://route.example") in seen.cors


async def test_same_as_scg(
    upstream: Upstream, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    why = scg_unavailable()
    if why is not None:
        pytest.skip(why)
    text = APPLICATION_YML.replace("UPSTREAM", upstream.url)
    scg = await asyncio.to_thread(start_scg, text, tmp_path / "scg")
    path = tmp_path / "application.yml"
    path.write_text(text)
    ours = await start_gateway(path)
    try:
        for one in CASES:
            theirs, _ = await observe(session, scg.url, upstream, one)
            mine, reply = await observe(session, ours.url, upstream, one)
            if theirs.status == 403:
                # Deliberate: a refusal carries meshgate's JSON error body (SCG's is empty).
                assert reply.content_type == "application/json", one
                mine = Seen(mine.status, mine.cors, theirs.body, mine.forwarded)
            assert mine == theirs, one
        # Deliberate: a preflight no route matches is 404 here, as every unrouted request is;
        # SCG answers it 200 with no CORS headers (its static-resource handler maps /**).
        unrouted = case("OPTIONS", "/nowhere", origin=A, ask="GET")
        theirs, _ = await observe(session, scg.url, upstream, unrouted)
        mine, _ = await observe(session, ours.url, upstream, unrouted)
        assert (theirs.status, theirs.cors, mine.status, mine.cors) == (200, [], 404, [])
    finally:
        await ours.gateway.stop()
        await asyncio.to_thread(scg.stop)
