"""The forwarding headers side by side with a real Spring Cloud Gateway 5.0.4 that trusts the
client (``trusted-proxies`` set, so SCG writes them at all): X-Forwarded-Prefix after the path
filters, alone and in pairs, and what becomes of a trusted client's own X-Forwarded-* values.

Each case's X-Forwarded-* headers must be the same on both sides, with each side's own port
spelled ``PORT``. The deliberate difference (issue 13, the README's list): a trusted proxy's
X-Forwarded-For chain and Forwarded elements are kept whole here, where SCG drops the entries
that don't themselves match ``trusted-proxies``; ``test_deliberate_*`` shows both sides.

Skipped, with the reason, where Java or the built peer is missing (``make scg-test-peer``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio

from tests.support.gateway import RunningGateway, start_gateway
from tests.support.scg import ScgPeer, scg_unavailable, start_scg
from tests.support.upstream import Upstream, start_upstream

_UNAVAILABLE = scg_unavailable()
pytestmark = [
    pytest.mark.skipif(_UNAVAILABLE is not None, reason=f"SCG differential: {_UNAVAILABLE}"),
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
]

APPLICATION_YML = r"""
spring:
  cloud:
    gateway:
      server:
        webflux:
          trusted-proxies: 127\.0\.0\.1
          routes:
            - id: plain
              uri: UPSTREAM
              predicates: [Path=/plain/**]
            - id: strip
              uri: UPSTREAM
              predicates: [Path=/strip/**]
              filters: [StripPrefix=1]
            - id: strip-two
              uri: UPSTREAM
              predicates: [Path=/s2/**]
              filters: [StripPrefix=2]
            - id: strip-then-prefix
              uri: UPSTREAM
              predicates: [Path=/sp/**]
              filters: [StripPrefix=1, PrefixPath=/v2]
            - id: prefix-then-strip
              uri: UPSTREAM
              predicates: [Path=/ps/**]
              filters: [PrefixPath=/v2, StripPrefix=1]
            - id: rewrite
              uri: UPSTREAM
              predicates: [Path=/rw/**]
              filters: ['RewritePath=/rw/(?<rest>.*), /$\{rest}']
            - id: set-path
              uri: UPSTREAM
              predicates: ['Path=/set/{seg}']
              filters: ['SetPath=/x/{seg}']
"""

PROXIED = (
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "edge.example"),
    ("X-Forwarded-Port", "443"),
    ("X-Forwarded-Prefix", "/edge"),
)


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()


CASES = (
    Case("plain", "/plain/a"),
    Case("plain-from-a-proxy", "/plain/a", PROXIED),
    Case("strip", "/strip/a/b"),
    Case("strip-from-a-proxy", "/strip/a/b", PROXIED),
    Case("strip-trailing-slash", "/strip/a/"),
    Case("strip-to-root", "/strip"),
    Case("strip-two", "/s2/a/b/c"),
    Case("strip-two-to-root", "/s2/a"),
    Case("strip-then-prefix", "/sp/a/b"),
    # SCG's X-Forwarded-Prefix here is /v2, which the client never sent: the path between the
    # two filters (/v2/a/b) ends with the one sent (/a/b).
    Case("prefix-then-strip", "/ps/a/b"),
    Case("rewrite", "/rw/a/b"),
    Case("set-path", "/set/q"),
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstream() -> AsyncIterator[Upstream]:
    started = await start_upstream("up")
    yield started
    await started.runner.cleanup()


@pytest.fixture(scope="module")
def application_yml(upstream: Upstream) -> str:
    return APPLICATION_YML.replace("UPSTREAM", upstream.url)


@pytest.fixture(scope="module")
def scg(application_yml: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScgPeer]:
    peer = start_scg(application_yml, tmp_path_factory.mktemp("scg"))
    yield peer
    peer.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def meshgate(
    application_yml: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningGateway]:
    path = tmp_path_factory.mktemp("meshgate") / "application.yml"
    path.write_text(application_yml)
    running = await start_gateway(path)
    yield running
    await running.gateway.stop()


async def forwarding_headers(
    base: str, port: int, case: Case, extra: tuple[tuple[str, str], ...] = ()
) -> tuple[str, dict[str, str]]:
    """What the upstream received: the path, and the forwarding headers by lower-cased name
    with the gateway's own port spelled PORT."""
    own_port = re.compile(rf":{port}\b|^{port}\b|,{port}\b")
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + case.path, headers=[*case.headers, *extra]) as response,
    ):
        assert response.status == 200
        report = await response.json()
    seen = {}
    for name, value in report["headers"]:
        lower = name.lower()
        if lower.startswith("x-forwarded-") or lower == "forwarded":
            seen[lower] = own_port.sub(lambda m: m.group(0).replace(str(port), "PORT"), value)
    return report["path"], seen


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_forwarding_headers_same_as_scg(
    case: Case, scg: ScgPeer, meshgate: RunningGateway
) -> None:
    scg_path, scg_seen = await forwarding_headers(scg.url, scg.port, case)
    our_path, our_seen = await forwarding_headers(meshgate.url, meshgate.port, case)
    assert our_path == scg_path
    # Forwarded: SCG writes its pairs in another order (proto;host;for), compared apart, and
    # each side's connection to the client has its own port.
    scg_forwarded, our_forwarded = scg_seen.pop("forwarded"), our_seen.pop("forwarded")
    assert our_seen == scg_seen
    assert _pairs(our_forwarded) == _pairs(scg_forwarded)


def _pairs(forwarded: str) -> list[str]:
    return sorted(_CLIENT_PORT.sub(r'for="\1:CLIENT"', forwarded).split(";"))


_CLIENT_PORT = re.compile(r'for="([^"]+):\d+"')


async def test_deliberate_a_trusted_proxys_chain_is_kept_whole(
    scg: ScgPeer, meshgate: RunningGateway
) -> None:
    chain = (("X-Forwarded-For", "10.0.0.1, 192.0.2.7"), ("Forwarded", "for=10.0.0.1"))
    case = Case("chain", "/plain/a")
    _, scg_seen = await forwarding_headers(scg.url, scg.port, case, chain)
    _, our_seen = await forwarding_headers(meshgate.url, meshgate.port, case, chain)
    # SCG keeps only the entries that match trusted-proxies themselves: none of the client's.
    assert scg_seen["x-forwarded-for"] == "127.0.0.1"
    assert "10.0.0.1" not in scg_seen["forwarded"]
    # meshgate keeps what the trusted proxy reported and appends the proxy's own address.
    assert our_seen["x-forwarded-for"] == "10.0.0.1, 192.0.2.7,127.0.0.1"
    assert our_seen["forwarded"].startswith("for=10.0.0.1, for=")
