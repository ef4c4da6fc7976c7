"""JwtAuth end to end: the real gateway process, a real JWKS server (an aiohttp app on
127.0.0.1 that counts its fetches) and a real upstream that records what reaches it. Tokens
are signed with real keys by PyJWT."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from tests.support.gateway import GatewayProcess, spawn_gateway
from tests.support.jwt_keys import Claims, SigningKey, hmac_with, jwks, tampered, unsigned
from tests.support.upstream import serve

ISSUER = "https://idp.test/"
REFETCH = 1.5  # GATEWAY_JWKS_REFETCH_INTERVAL for these tests (30 s by default)
K1 = SigningKey.rsa("k1")
K2 = SigningKey.rsa("k2")
E1 = SigningKey.ec("e1")


@dataclass
class JwksServer:
    """Serves ``document`` at /jwks and counts the fetches."""

    document: dict[str, Any]
    fetches: int = 0
    port: int = 0
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response(self.document, headers={"Cache-Control": "max-age=600"})

    async def start(self) -> JwksServer:
        app = web.Application()
        app.router.add_get("/jwks", self.handle)
        self.runner, self.port = await serve(app, self.port)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"


@dataclass
class Recorder:
    """The upstream: records the headers of each request that reaches it."""

    seen: list[CIMultiDict[str]] = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(CIMultiDict(request.headers))
        return web.json_response({"ok": True})

    async def start(self) -> Recorder:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner, self.port = await serve(app)
        return self


ROUTES = """\
default-filters:
  - name: JwtAuth
    args:
      jwks-uri: {jwks}
      issuer: {issuer}
      audiences: [orders, billing]
      claims-to-headers:
        sub: X-User-Id
        email: X-User-Email
routes:
  - id: orders
    uri: http://127.0.0.1:{up}
    predicates: [Path=/orders/**]
  - id: admin
    uri: http://127.0.0.1:{up}
    predicates: [Path=/admin/**]
    filters:
      - name: JwtAuth
        args:
          jwks-uri: {jwks}
          issuer: {issuer}
          audiences: [orders]
          required-scopes: [orders.admin]
"""


@pytest.fixture
async def idp() -> AsyncIterator[JwksServer]:
    server = await JwksServer(jwks(K1, E1)).start()
    yield server
    await server.stop()


@pytest.fixture
async def upstream() -> AsyncIterator[Recorder]:
    recorder = await Recorder().start()
    yield recorder
    assert recorder.runner is not None
    await recorder.runner.cleanup()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for process in started:
        process.stop()


async def start(
    tmp_path: Path, idp: JwksServer, upstream: Recorder, started: list[GatewayProcess]
) -> GatewayProcess:
    config = tmp_path / "routes.yml"
    config.write_text(ROUTES.format(jwks=idp.uri, issuer=ISSUER, up=upstream.port))
    gateway = await asyncio.to_thread(
        spawn_gateway,
        config,
        tmp_path,
        GATEWAY_ACCESS_LOG="false",
        GATEWAY_JWKS_REFETCH_INTERVAL=str(REFETCH),
    )
    started.append(gateway)
    return gateway


@dataclass
class Answer:
    status: int
    challenge: str | None
    body: Any


async def call(
    session: aiohttp.ClientSession, url: str, token: str | None, **headers: str
) -> Answer:
    sent = dict(headers)
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with session.get(url, headers=sent, timeout=aiohttp.ClientTimeout(total=10)) as resp:
        body = await resp.json(content_type=None)
        return Answer(resp.status, resp.headers.get("WWW-Authenticate"), body)


def claims() -> Claims:
    return Claims(time.time(), issuer=ISSUER, extra={"email": "alice@example.com"})


async def test_tokens_are_checked_before_anything_reaches_the_upstream(
    tmp_path: Path,
    idp: JwksServer,
    upstream: Recorder,
    gateway_factory: list[GatewayProcess],
    session: aiohttp.ClientSession,
) -> None:
    gateway = await start(tmp_path, idp, upstream, gateway_factory)
    orders = f"{gateway.url}/orders/1"
    made = claims()

    # A valid token: the upstream sees its claims as headers, and none of the client's copies.
    token = K1.sign(made.make())
    ok = await call(session, orders, token, **{"X-User-Id": "admin", "X-User-Email": "x@evil"})
    assert ok.status == 200, ok.body
    assert len(upstream.seen) == 1
    seen = upstream.seen[0]
    assert seen.getall("X-User-Id") == ["alice"]
    assert seen.getall("X-User-Email") == ["alice@example.com"]
    assert seen["Authorization"] == f"Bearer {token}"
    # An EC key from the same JWKS, and a token for the other listed audience.
    assert (await call(session, orders, E1.sign(made.make(aud="billing")))).status == 200

    refusals = {
        "token expired": K1.sign(made.make(exp=int(time.time()) - 120)),
        "audience not accepted": K1.sign(made.make(aud="inventory")),
        "issuer not accepted": K1.sign(made.make(iss="https://evil.test/")),
        "signature invalid": tampered(K1.sign(made.make())),
        "algorithm not accepted": unsigned(made.make(), kid="k1"),
    }
    for reason, bad in refusals.items():
        answer = await call(session, orders, bad)
        assert answer.status == 401, (reason, answer.body)
        assert answer.challenge == f'Bearer error="invalid_token", error_description="{reason}"'
        assert answer.body["message"] == reason
        assert answer.body["status"] == 401
    # The RS256 -> HS256 confusion: the RSA public key's PEM as the HMAC secret.
    forged = hmac_with(K1.public_pem(), made.make(sub="mallory"), kid="k1")
    confused = await call(session, orders, forged)
    assert confused.status == 401
    assert confused.body["message"] == "algorithm not accepted"
    # No token at all: RFC 6750's bare challenge.
    missing = await call(session, orders, None)
    assert (missing.status, missing.challenge) == (401, "Bearer")

    # The admin route needs a scope this token lacks; with it, it passes.
    admin = f"{gateway.url}/admin/x"
    scoped = await call(session, admin, K1.sign(made.make()))
    assert scoped.status == 403
    assert scoped.challenge is not None
    assert 'error="insufficient_scope"' in scoped.challenge
    assert 'scope="orders.admin"' in scoped.challenge
    granted = await call(session, admin, K1.sign(made.make(scope="orders.admin")))
    assert granted.status == 200
    assert len(upstream.seen) == 3  # the two valid orders requests and the granted one


async def test_jwks_rotation_random_kids_and_an_outage(
    tmp_path: Path,
    idp: JwksServer,
    upstream: Recorder,
    gateway_factory: list[GatewayProcess],
    session: aiohttp.ClientSession,
) -> None:
    gateway = await start(tmp_path, idp, upstream, gateway_factory)
    orders = f"{gateway.url}/orders/1"
    made = claims()
    assert (await call(session, orders, K1.sign(made.make()))).status == 200
    assert idp.fetches == 1  # fetched once when the routes were built

    # Before the rotation the provider does not publish k2: an unknown kid, refused.
    await asyncio.sleep(REFETCH + 0.2)
    before = await call(session, orders, K2.sign(made.make()))
    assert before.status == 401
    assert before.body["message"] == "signing key unknown"
    assert idp.fetches == 2  # the unknown kid looked once

    # Random kids do not cause a fetch each: at most one per interval for the URI.
    began = time.monotonic()
    for _ in range(10):
        refused = await call(session, orders, K2.sign(made.make(), kid=f"r-{uuid.uuid4()}"))
        assert refused.status == 401
    intervals = int((time.monotonic() - began) / REFETCH)
    assert idp.fetches <= 2 + intervals + 1 < 12

    # The provider rotates to k2 alone: after the interval, k2 is fetched and accepted, and
    # k1 (no longer published) is refused, even for a token verified before.
    idp.document = jwks(K2)
    await asyncio.sleep(REFETCH + 0.2)
    fetched = idp.fetches
    k2_token = K2.sign(made.make(sub="bob"))
    rotated = await call(session, orders, k2_token)
    assert rotated.status == 200, rotated.body
    assert idp.fetches == fetched + 1
    assert upstream.seen[-1]["X-User-Id"] == "bob"
    old = await call(session, orders, K1.sign(made.make()))
    assert old.status == 401

    # The provider goes down: cached keys keep working, for new tokens too, and a failed
    # refetch (an unknown kid after the interval) changes nothing.
    await idp.stop()
    await asyncio.sleep(REFETCH + 0.2)
    assert (await call(session, orders, SigningKey.rsa("k9").sign(made.make()))).status == 401
    assert (await call(session, orders, k2_token)).status == 200
    fresh = await call(session, orders, K2.sign(made.make(sub="carol")))
    assert fresh.status == 200, fresh.body
    assert upstream.seen[-1]["X-User-Id"] == "carol"
    assert "fetch failed" in gateway.log()
