"""The one client address end to end, in a real gateway process: through trusted proxies
(GATEWAY_TRUSTED_PROXIES as a CIDR list, or SCG's regex in the route file) X-Forwarded-For
names the client that IpFilter, RemoteAddr, the rate limiter's remote-addr key and the access
log all see; from a peer that is not trusted the header is ignored.

Every request comes from 127.0.0.1; the X-Forwarded-For header presents the clients."""

from __future__ import annotations

import asyncio
import json
import signal
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import MakeGateway
from tests.support.gateway import GatewayProcess, spawn_gateway
from tests.support.upstream import Upstream

pytestmark = pytest.mark.slow

ROUTES = """\
routes:
  - id: allow
    uri: {up}
    predicates: [Path=/allow/**]
    filters: ["IpFilter=allow, 203.0.113.0/24, 2001:db8::/32"]
  - id: deny
    uri: {up}
    predicates: [Path=/deny/**]
    filters: ["IpFilter=deny, 198.51.100.0/24"]
  - id: remote
    uri: {up}
    predicates: [Path=/remote/**, "RemoteAddr=192.0.2.0/24"]
  - id: limited
    uri: {up}
    predicates: [Path=/limited/**]
    filters:
      - name: RequestRateLimiter
        args:
          # One request a minute per key: a bucket of 60 tokens, 60 a request, 1 back a second.
          redis-rate-limiter.replenishRate: 1
          redis-rate-limiter.burstCapacity: 60
          redis-rate-limiter.requestedTokens: 60
          key-resolver: remote-addr
  - id: echo
    uri: {up}
    predicates: [Path=/echo/**]
"""


def write_routes(tmp_path: Path, upstream: Upstream, extra: str = "") -> Path:
    path = tmp_path / "routes.yml"
    path.write_text(textwrap.dedent(extra) + ROUTES.format(up=upstream.url))
    return path


async def call(
    session: aiohttp.ClientSession,
    base: str,
    path: str,
    forwarded_for: str | None = None,
    request_id: str | None = None,
) -> tuple[int, Any]:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    async with session.get(f"{base}{path}", headers=headers) as response:
        body = await response.read()
        data = json.loads(body) if body else None
        return response.status, data


def upstream_xff(echoed: Any) -> list[str]:
    return [value for name, value in echoed["headers"] if name.lower() == "x-forwarded-for"]


def access_log(gateway: GatewayProcess) -> dict[str, dict[str, Any]]:
    """The access log's lines by request id (after the process has exited)."""
    lines: dict[str, dict[str, Any]] = {}
    for line in gateway.log().splitlines():
        if line.startswith("{") and '"requestId"' in line:
            entry = json.loads(line)
            lines[entry["requestId"]] = entry
    return lines


@pytest.fixture
async def trusting(tmp_path: Path, upstream: Upstream) -> AsyncIterator[GatewayProcess]:
    """A gateway that trusts 127.0.0.1 (the test's own address) and 10.0.0.0/8."""
    gateway = await asyncio.to_thread(
        spawn_gateway,
        write_routes(tmp_path, upstream),
        tmp_path,
        GATEWAY_TRUSTED_PROXIES="127.0.0.1/32, 10.0.0.0/8",
        GATEWAY_ACCESS_LOG="true",
    )
    yield gateway
    await asyncio.to_thread(gateway.stop)


async def test_through_a_trusted_peer_the_forwarded_client_is_the_client(
    trusting: GatewayProcess, session: aiohttp.ClientSession
) -> None:
    base = trusting.url
    cases = [
        # (path, X-Forwarded-For, status, request id)
        ("/allow/x", "203.0.113.5", 200, "allow-one-hop"),
        # Several trusted hops (our own edge appended 10.0.0.2 and 10.0.0.1): walked past.
        ("/allow/x", "6.6.6.6, 203.0.113.5, 10.0.0.2, 10.0.0.1", 200, "allow-many-hops"),
        # The first untrusted hop from the right decides, whatever stands left of it.
        ("/allow/x", "203.0.113.5, 198.51.100.9, 10.0.0.2", 403, "allow-untrusted-hop"),
        ("/allow/x", "[2001:db8::7]:443", 200, "allow-ipv6"),
        ("/allow/x", None, 403, "allow-peer"),  # the peer itself, 127.0.0.1: not allowed
        ("/deny/x", "198.51.100.1", 403, "deny-listed"),
        ("/deny/x", "203.0.113.5", 200, "deny-other"),
        ("/remote/x", "192.0.2.8", 200, "remote-in"),
        ("/remote/x", "203.0.113.5", 404, "remote-out"),  # no other route matches
    ]
    for path, forwarded_for, status, request_id in cases:
        got, body = await call(session, base, path, forwarded_for, request_id)
        assert got == status, (path, forwarded_for, body)
        if status == 403:
            assert body["status"] == 403 and body["error"] == "Forbidden"
            assert body["path"] == path

    # The rate limiter keys on the resolved client: one request a minute each.
    limited = [
        await call(session, base, "/limited/x", "203.0.113.10", "limit-a1"),
        await call(session, base, "/limited/x", "203.0.113.10, 10.0.0.3", "limit-a2"),
        await call(session, base, "/limited/x", "203.0.113.11", "limit-b1"),
    ]
    assert [status for status, _ in limited] == [200, 429, 200]

    # A trusted peer's header goes upstream, our peer appended, as SCG's trusted-proxies does.
    status, echoed = await call(session, base, "/echo/x", "203.0.113.5, 10.0.0.2", "echo")
    assert status == 200
    assert upstream_xff(echoed) == ["203.0.113.5, 10.0.0.2,127.0.0.1"]

    trusting.signal(signal.SIGTERM)
    assert await asyncio.to_thread(trusting.process.wait, 20) == 0
    clients = {rid: entry["client"] for rid, entry in access_log(trusting).items()}
    assert clients == {
        "allow-one-hop": "203.0.113.5",
        "allow-many-hops": "203.0.113.5",
        "allow-untrusted-hop": "198.51.100.9",
        "allow-ipv6": "2001:db8::7",
        "allow-peer": "127.0.0.1",
        "deny-listed": "198.51.100.1",
        "deny-other": "203.0.113.5",
        "remote-in": "192.0.2.8",
        "remote-out": "203.0.113.5",
        "limit-a1": "203.0.113.10",
        "limit-a2": "203.0.113.10",
        "limit-b1": "203.0.113.11",
        "echo": "203.0.113.5",
    }


async def test_a_spoofed_header_from_an_untrusted_peer_is_ignored(
    tmp_path: Path, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    # Trusted proxies are configured, but the test's address (127.0.0.1) is not one of them.
    gateway = await asyncio.to_thread(
        spawn_gateway,
        write_routes(tmp_path, upstream),
        tmp_path,
        GATEWAY_TRUSTED_PROXIES="10.0.0.0/8",
        GATEWAY_ACCESS_LOG="true",
    )
    try:
        base = gateway.url
        assert (await call(session, base, "/allow/x", "203.0.113.5", "spoof-allow"))[0] == 403
        assert (await call(session, base, "/remote/x", "192.0.2.8", "spoof-remote"))[0] == 404
        assert (await call(session, base, "/deny/x", "203.0.113.5", "spoof-deny"))[0] == 200
        # Two "different" clients are one: the second is limited.
        first = await call(session, base, "/limited/x", "203.0.113.20", "spoof-limit-1")
        second = await call(session, base, "/limited/x", "203.0.113.21", "spoof-limit-2")
        assert (first[0], second[0]) == (200, 429)
        status, echoed = await call(session, base, "/echo/x", "203.0.113.5", "spoof-echo")
        assert status == 200
        assert upstream_xff(echoed) == ["127.0.0.1"]  # the forged value never goes upstream
        gateway.signal(signal.SIGTERM)
        assert await asyncio.to_thread(gateway.process.wait, 20) == 0
        logged = access_log(gateway)
        assert {entry["client"] for entry in logged.values()} == {"127.0.0.1"}
        assert len(logged) == 6
    finally:
        await asyncio.to_thread(gateway.stop)


async def test_scgs_trusted_proxies_regex_in_the_route_file(
    make_gateway: MakeGateway, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    document = """\
        spring:
          cloud:
            gateway:
              trusted-proxies: 127\\.0\\.0\\.1|10\\.0\\.0\\.\\d+
        """
    gw = await make_gateway(textwrap.dedent(document) + ROUTES.format(up=upstream.url))
    assert (await call(session, gw.url, "/allow/x", "203.0.113.5, 10.0.0.4"))[0] == 200
    assert (await call(session, gw.url, "/allow/x", "203.0.113.5, 10.0.1.4"))[0] == 403
    assert (await call(session, gw.url, "/allow/x"))[0] == 403
