"""The upstream TLS client context (``gateway.security.tls_client``) and the pool connecting
with it: real handshakes with a private CA's certificates on 127.0.0.1 — the IP SAN check for
an address, the configured server name as SNI, idle connections kept apart by server name, a
verification failure as its own connect error."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.dispatch import error_response
from gateway.engine.pool import ConnectionPool, PoolSettings
from gateway.errors import ConfigError, UpstreamCertificateError, UpstreamConnectError
from gateway.security.tls_client import UpstreamTlsOptions, client_context
from tests.support.certs import CertificateAuthority, Issued


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "ca")


# -- the context -----------------------------------------------------------------------------------
def test_verification_is_on_by_default_with_a_tls_1_2_floor(ca: CertificateAuthority) -> None:
    context = client_context(UpstreamTlsOptions(ca_file=str(ca.cert_file)))
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    # The private CA is trusted (besides the system's store).
    assert any("meshgate test CA" in str(cert["subject"]) for cert in context.get_ca_certs())


@pytest.mark.parametrize("given", ["cert", "key"])
def test_a_client_certificate_needs_both_files(ca: CertificateAuthority, given: str) -> None:
    client = ca.issue("gw", client=True)
    options = (
        UpstreamTlsOptions(client_cert_file=str(client.cert_file))
        if given == "cert"
        else UpstreamTlsOptions(client_key_file=str(client.key_file))
    )
    with pytest.raises(ConfigError) as caught:
        client_context(options)
    first, second = (
        ("GATEWAY_UPSTREAM_CLIENT_CERT_FILE", "GATEWAY_UPSTREAM_CLIENT_KEY_FILE")
        if given == "cert"
        else ("GATEWAY_UPSTREAM_CLIENT_KEY_FILE", "GATEWAY_UPSTREAM_CLIENT_CERT_FILE")
    )
    assert caught.value.reason.startswith(f"{first} is set but {second} is not")
    assert caught.value.location == "upstream TLS"


def test_a_key_that_is_not_the_certificates_is_an_error(ca: CertificateAuthority) -> None:
    one, other = ca.issue("one", client=True), ca.issue("other", client=True)
    with pytest.raises(ConfigError, match="cannot load the client certificate and key"):
        client_context(
            UpstreamTlsOptions(
                client_cert_file=str(one.cert_file), client_key_file=str(other.key_file)
            )
        )


def test_ca_files_that_cannot_be_loaded_name_their_setting(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError) as caught:
        client_context(UpstreamTlsOptions(ca_file=str(missing)))
    assert caught.value.reason.startswith(
        f"GATEWAY_UPSTREAM_CA_FILE: cannot load CA certificates from '{missing}'"
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError) as caught:
        client_context(UpstreamTlsOptions(trusted_certificates=(str(garbage),)))
    assert caught.value.reason.startswith(
        "GATEWAY_UPSTREAM_TRUSTED_CERTIFICATES (httpclient.ssl.trusted-x509-certificates): "
        f"cannot load CA certificates from '{garbage}'"
    )


def test_verification_off_is_said_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="meshgate.tls"):
        context = client_context(UpstreamTlsOptions(verify=False))
    assert context.verify_mode is ssl.CERT_NONE
    assert not context.check_hostname
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "NOT verified" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="meshgate.tls"):
        client_context(UpstreamTlsOptions())
    assert caplog.records == []


def test_an_unverified_upstream_certificate_is_a_502_that_says_so_and_no_more() -> None:
    error = UpstreamCertificateError(
        "cannot connect to 10.1.2.3:8443: its TLS certificate for '10.1.2.3' could not be "
        "verified: self-signed certificate"
    )
    assert isinstance(error, UpstreamConnectError)  # retried and ejected as a connect failure
    response = error_response(None, error)
    assert response.status == 502
    assert isinstance(response.body, bytes)
    assert b'"message":"the upstream\'s TLS certificate could not be verified"' in response.body
    assert b"10.1.2.3" not in response.body
    assert b"self-signed" not in response.body
    # Other 5xx bodies still say nothing.
    other = error_response(None, UpstreamConnectError("cannot connect to 10.1.2.3:80: refused"))
    assert isinstance(other.body, bytes)
    assert b'"message":""' in other.body


# -- the pool connecting with it ------------------------------------------------------------------
@dataclass
class TlsServer:
    port: int
    server_names: list[str | None]  # the SNI of each handshake


StartServer = Callable[[Issued], Awaitable[TlsServer]]


@pytest.fixture
async def tls_server() -> AsyncIterator[StartServer]:
    """``await tls_server(issued)``: a TLS server on 127.0.0.1 presenting ``issued``; it keeps
    each connection open until the client closes it."""
    servers: list[asyncio.Server] = []

    async def start(issued: Issued) -> TlsServer:
        seen: list[str | None] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(issued.cert_file, issued.key_file)

        def sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            seen.append(name)

        context.sni_callback = sni

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        servers.append(server)
        return TlsServer(server.sockets[0].getsockname()[1], seen)

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def pool_trusting(ca: CertificateAuthority) -> ConnectionPool:
    return ConnectionPool(
        PoolSettings(), client_context(UpstreamTlsOptions(ca_file=str(ca.cert_file)))
    )


async def test_an_ip_address_is_checked_against_the_ip_san_and_sends_no_sni(
    ca: CertificateAuthority, tls_server: StartServer
) -> None:
    pool = pool_trusting(ca)
    by_ip = await tls_server(ca.issue("ip", ips=("127.0.0.1",)))
    conn = await pool.connect("127.0.0.1", by_ip.port, True)
    conn.close()
    assert by_ip.server_names == [None]  # RFC 6066: no IP address in SNI
    dns_only = await tls_server(ca.issue("dns", dns=("orders.mesh.test",)))
    with pytest.raises(
        UpstreamCertificateError, match="could not be verified: IP address mismatch"
    ):
        await pool.connect("127.0.0.1", dns_only.port, True)
    pool.close()


async def test_a_server_name_is_the_sni_and_the_name_checked(
    ca: CertificateAuthority, tls_server: StartServer
) -> None:
    pool = pool_trusting(ca)
    server = await tls_server(ca.issue("dns", dns=("orders.mesh.test",)))
    conn = await pool.connect("127.0.0.1", server.port, True, server_name="orders.mesh.test")
    assert server.server_names == ["orders.mesh.test"]
    with pytest.raises(UpstreamCertificateError, match="Hostname mismatch"):
        await pool.connect("127.0.0.1", server.port, True, server_name="billing.mesh.test")
    # An idle connection is reused only for the name it was opened with.
    pool.release(conn)
    assert pool.take("127.0.0.1", server.port, True) is None
    assert pool.take("127.0.0.1", server.port, True, "billing.mesh.test") is None
    assert pool.take("127.0.0.1", server.port, True, "orders.mesh.test") is conn
    conn.close()
    pool.close()


async def test_an_untrusted_certificate_is_a_certificate_error(
    tmp_path: Path, ca: CertificateAuthority, tls_server: StartServer
) -> None:
    stranger = CertificateAuthority(tmp_path / "other", name="other CA")
    pool = pool_trusting(ca)
    server = await tls_server(stranger.issue("s", ips=("127.0.0.1",)))
    with pytest.raises(UpstreamCertificateError, match="unable to get local issuer certificate"):
        await pool.connect("127.0.0.1", server.port, True)
    pool.close()


async def test_a_pool_without_a_tls_context_opens_no_tls_connection() -> None:
    pool = ConnectionPool(PoolSettings())
    with pytest.raises(UpstreamConnectError, match="no TLS client context"):
        await pool.connect("127.0.0.1", 1, True)
