"""Upstream TLS end to end: real HTTPS upstreams on 127.0.0.1 with certificates from a private
CA, the real gateway in front. Verification against the CA file, refusal of an untrusted or
misnamed certificate (502, counted as a connect failure), an instance registered by IP checked
against its IP SAN or a configured server name, verification off with a warning, a client
certificate for an upstream that requires one, the SCG keys from the route file, a
retargeted request, and Consul instances marked secure with a server name."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import MakeGateway
from tests.support.certs import CertificateAuthority, Issued
from tests.support.consul import ConsulAgent
from tests.support.echoed import Echoed, get
from tests.support.gateway import spawn_gateway
from tests.support.upstream import Upstream, start_upstream

NOT_VERIFIED = "the upstream's TLS certificate could not be verified"


@dataclass(frozen=True)
class Pki:
    ca: CertificateAuthority
    # For "localhost" and 127.0.0.1 (DNS and IP SANs).
    local: Issued
    # For "orders.mesh.test" only: wrong for 127.0.0.1 and localhost.
    named: Issued
    client: Issued
    # A CA the gateway is never told about, and a certificate it signed for localhost.
    stranger: CertificateAuthority
    stranger_local: Issued


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = CertificateAuthority(tmp_path / "ca")
    stranger = CertificateAuthority(tmp_path / "stranger", name="other CA")
    return Pki(
        ca=ca,
        local=ca.issue("local", dns=("localhost",), ips=("127.0.0.1",)),
        named=ca.issue("orders", dns=("orders.mesh.test",)),
        client=ca.issue("gateway", client=True, uris=("spiffe://mesh.test/gateway",)),
        stranger=stranger,
        stranger_local=stranger.issue("impostor", dns=("localhost",), ips=("127.0.0.1",)),
    )


def server_context(issued: Issued, client_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert_file, issued.key_file)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


@pytest.fixture
async def servers(pki: Pki) -> AsyncIterator[dict[str, Upstream]]:
    started = {
        "local": await start_upstream("local", ssl_context=server_context(pki.local)),
        "named": await start_upstream("named", ssl_context=server_context(pki.named)),
        "stranger": await start_upstream(
            "stranger", ssl_context=server_context(pki.stranger_local)
        ),
        "mtls": await start_upstream(
            "mtls", ssl_context=server_context(pki.local, client_ca=pki.ca.cert_file)
        ),
    }
    yield started
    for server in started.values():
        await server.runner.cleanup()


def document(
    uri: str,
    services: dict[str, list[dict[str, object]]] | None = None,
    spring_ssl: dict[str, object] | None = None,
) -> str:
    """A route document (JSON is YAML): one route ``/x/**`` to ``uri``, static services, and
    SCG's ``httpclient.ssl`` keys."""
    doc: dict[str, object] = {
        "routes": [
            {"id": "r", "uri": uri, "predicates": ["Path=/x/**"], "filters": ["StripPrefix=1"]}
        ]
    }
    if services is not None:
        doc["services"] = services
    if spring_ssl is not None:
        doc["spring.cloud.gateway.server.webflux"] = {"httpclient": {"ssl": spring_ssl}}
    return json.dumps(doc)


def by_ip(port: int, **extra: object) -> dict[str, object]:
    return {"host": "127.0.0.1", "port": port, "secure": True, **extra}


def refused_as_unverified(echoed: Echoed) -> None:
    assert echoed.status == 502
    body = echoed.json()
    assert body["error"] == "Bad Gateway"
    assert body["message"] == NOT_VERIFIED
    # Nothing internal: no address, no OpenSSL text, no trace.
    assert b"127.0.0.1" not in echoed.body
    assert b"Traceback" not in echoed.body
    assert b"CERTIFICATE_VERIFY_FAILED" not in echoed.body


async def test_https_upstream_verified_against_the_ca_file(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    pki: Pki,
    session: aiohttp.ClientSession,
) -> None:
    port = servers["local"].port
    gw = await make_gateway(
        document(f"https://localhost:{port}"), upstream_ca_file=str(pki.ca.cert_file)
    )
    echoed = await get(session, f"{gw.url}/x/hello")
    assert (echoed.status, echoed.upstream, echoed.path) == (200, "local", "/hello")


async def test_without_the_ca_file_the_private_ca_is_not_trusted(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = await make_gateway(document(f"https://localhost:{servers['local'].port}"))
    with caplog.at_level(logging.WARNING):
        refused_as_unverified(await get(session, f"{gw.url}/x/hello"))
    # The log says why (the client's body does not).
    assert "could not be verified" in caplog.text
    assert "unable to get local issuer certificate" in caplog.text


async def test_a_certificate_from_another_ca_is_refused(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    pki: Pki,
    session: aiohttp.ClientSession,
) -> None:
    gw = await make_gateway(
        document(f"https://localhost:{servers['stranger'].port}"),
        upstream_ca_file=str(pki.ca.cert_file),
    )
    refused_as_unverified(await get(session, f"{gw.url}/x/hello"))


async def test_a_certificate_for_another_name_is_refused(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    pki: Pki,
    session: aiohttp.ClientSession,
) -> None:
    # Trusted CA, but the certificate names orders.mesh.test, not localhost.
    gw = await make_gateway(
        document(f"https://localhost:{servers['named'].port}"),
        upstream_ca_file=str(pki.ca.cert_file),
    )
    refused_as_unverified(await get(session, f"{gw.url}/x/hello"))


async def test_an_instance_registered_by_ip_is_checked_against_its_ip_san(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    pki: Pki,
    session: aiohttp.ClientSession,
) -> None:
    ca = str(pki.ca.cert_file)
    gw = await make_gateway(
        document("lb://orders", {"orders": [by_ip(servers["local"].port)]}), upstream_ca_file=ca
    )
    echoed = await get(session, f"{gw.url}/x/hello")
    assert (echoed.status, echoed.upstream) == (200, "local")
    # The same CA's certificate, but with no IP SAN: 127.0.0.1 is not its name.
    gw = await make_gateway(
        document("lb://orders", {"orders": [by_ip(servers["named"].port)]}), upstream_ca_file=ca
    )
    refused_as_unverified(await get(session, f"{gw.url}/x/hello"))


async def test_tls_server_name_is_the_name_sent_and_checked(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    pki: Pki,
    session: aiohttp.ClientSession,
) -> None:
    ca = str(pki.ca.cert_file)
    port = servers["named"].port
    named = by_ip(port, **{"tls-server-name": "orders.mesh.test"})
    gw = await make_gateway(document("lb://orders", {"orders": [named]}), upstream_ca_file=ca)
    echoed = await get(session, f"{gw.url}/x/hello")
    assert (echoed.status, echoed.upstream) == (200, "named")
    # A name the certificate does not carry is refused like any mismatch.
    other = by_ip(port, **{"tls-server-name": "billing.mesh.test"})
    gw = await make_gateway(document("lb://orders", {"orders": [other]}), upstream_ca_file=ca)
    refused_as_unverified(await get(session, f"{gw.url}/x/hello"))


async def test_an_unverifiable_instance_is_ejected_like_one_that_refuses(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    pki: Pki,
    session: aiohttp.ClientSession,
) -> None:
    instances = [
        by_ip(servers["stranger"].port, id="impostor"),
        by_ip(servers["local"].port, id="good"),
    ]
    gw = await make_gateway(
        document("lb://orders", {"orders": instances}),
        upstream_ca_file=str(pki.ca.cert_file),
        outlier_consecutive_failures=1,
    )
    answers = [await get(session, f"{gw.url}/x/hello") for _ in range(6)]
    statuses = [a.status for a in answers]
    assert statuses.count(502) == 1, statuses  # once, then the impostor is ejected
    assert {a.upstream for a in answers if a.status == 200} == {"local"}


async def test_verification_off_accepts_any_certificate_and_warns(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="meshgate.tls"):
        gw = await make_gateway(
            document(f"https://localhost:{servers['stranger'].port}"), upstream_tls_verify=False
        )
    assert "upstream TLS certificates are NOT verified" in caplog.text
    echoed = await get(session, f"{gw.url}/x/hello")
    assert (echoed.status, echoed.upstream) == (200, "stranger")


def test_the_process_warns_when_verification_is_off_and_refuses_half_a_client_cert(
    tmp_path: Path, pki: Pki
) -> None:
    routes = tmp_path / "routes.json"
    routes.write_text(document("https://localhost:1"))
    running = spawn_gateway(routes, tmp_path, GATEWAY_UPSTREAM_TLS_VERIFY="false")
    try:
        assert "upstream TLS certificates are NOT verified" in running.log()
    finally:
        running.stop()
    with pytest.raises(RuntimeError) as caught:
        spawn_gateway(
            routes, tmp_path, GATEWAY_UPSTREAM_CLIENT_CERT_FILE=str(pki.client.cert_file)
        ).stop()
    assert "gateway exited with 2" in str(caught.value)
    assert (
        "GATEWAY_UPSTREAM_CLIENT_CERT_FILE is set but GATEWAY_UPSTREAM_CLIENT_KEY_FILE is not"
        in str(caught.value)
    )


async def test_a_client_certificate_for_an_upstream_that_requires_one(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    pki: Pki,
    session: aiohttp.ClientSession,
) -> None:
    routes = document(f"https://localhost:{servers['mtls'].port}")
    with_cert = await make_gateway(
        routes,
        upstream_ca_file=str(pki.ca.cert_file),
        upstream_client_cert_file=str(pki.client.cert_file),
        upstream_client_key_file=str(pki.client.key_file),
    )
    echoed = await get(session, f"{with_cert.url}/x/hello")
    assert (echoed.status, echoed.upstream) == (200, "mtls")
    without = await make_gateway(routes, upstream_ca_file=str(pki.ca.cert_file))
    refused = await get(session, f"{without.url}/x/hello")
    assert refused.status == 502
    assert refused.upstream is None
    assert b"Traceback" not in refused.body


async def test_scg_trusted_x509_certificates_from_the_route_file(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    pki: Pki,
    session: aiohttp.ClientSession,
) -> None:
    trusted = [str(pki.stranger.cert_file), f"file:{pki.ca.cert_file}"]
    gw = await make_gateway(
        document(
            f"https://localhost:{servers['local'].port}",
            spring_ssl={"trusted-x509-certificates": trusted},
        )
    )
    assert gw.gateway.settings.upstream_trusted_certificates == (
        str(pki.stranger.cert_file),
        str(pki.ca.cert_file),
    )
    echoed = await get(session, f"{gw.url}/x/hello")
    assert (echoed.status, echoed.upstream) == (200, "local")


async def test_scg_use_insecure_trust_manager_from_the_route_file(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    routes = document(
        f"https://localhost:{servers['stranger'].port}",
        spring_ssl={"useInsecureTrustManager": True},
    )
    with caplog.at_level(logging.WARNING, logger="meshgate.tls"):
        gw = await make_gateway(routes)
    assert "NOT verified" in caplog.text
    assert (await get(session, f"{gw.url}/x/hello")).status == 200
    # An environment variable still wins over the document.
    strict = await make_gateway(routes, upstream_tls_verify=True)
    refused_as_unverified(await get(session, f"{strict.url}/x/hello"))


async def test_a_retargeted_request_is_verified_the_same_way(
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    pki: Pki,
    session: aiohttp.ClientSession,
) -> None:
    routes = json.dumps(
        {
            "routes": [
                {
                    "id": name,
                    "uri": "no://op",
                    "predicates": [f"Path=/{name}/**"],
                    "filters": [f"SetRequestUri=https://localhost:{servers[name].port}/p"],
                }
                for name in ("local", "stranger")
            ]
        }
    )
    gw = await make_gateway(routes, upstream_ca_file=str(pki.ca.cert_file))
    echoed = await get(session, f"{gw.url}/local/x")
    assert (echoed.status, echoed.upstream, echoed.path) == (200, "local", "/p")
    refused_as_unverified(await get(session, f"{gw.url}/stranger/x"))


async def test_consul_instances_marked_secure_with_a_tls_server_name(
    consul: ConsulAgent,
    monkeypatch: pytest.MonkeyPatch,
    make_gateway: MakeGateway,
    servers: dict[str, Upstream],
    pki: Pki,
    session: aiohttp.ClientSession,
) -> None:
    # By IP with a server name in ServiceMeta; by IP with the "secure" tag (its IP SAN).
    consul.register(
        "orders",
        "orders-1",
        servers["named"].port,
        meta={"secure": "true", "tls_server_name": "orders.mesh.test"},
    )
    consul.register("billing", "billing-1", servers["local"].port, tags=["secure"])
    monkeypatch.setenv("CONSUL_HTTP_ADDR", consul.http_addr)
    routes = json.dumps(
        {
            "routes": [
                {"id": name, "uri": f"lb://{name}", "predicates": [f"Path=/{name}/**"]}
                for name in ("orders", "billing")
            ]
        }
    )
    gw = await make_gateway(
        routes,
        discovery="consul",
        register_self=False,
        consul_wait="5s",
        upstream_ca_file=str(pki.ca.cert_file),
    )
    assert gw.gateway.consul is not None
    assert await gw.gateway.consul.wait_ready(10)
    orders = await get(session, f"{gw.url}/orders/x")
    assert (orders.status, orders.upstream) == (200, "named")
    billing = await get(session, f"{gw.url}/billing/x")
    assert (billing.status, billing.upstream) == (200, "local")
