"""HTTPS on the proxy port, end to end with real TLS: TLS 1.2 as the floor, mTLS with the
verified identity upstream as X-Forwarded-Client-Cert (and a client's own XFCC never passing),
WebSocket over TLS, start-up errors, and SIGHUP swapping the certificate under open
connections (the real process, on uvloop)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import signal
import ssl
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import MakeGateway
from tests.support.certs import CertificateAuthority, Issued
from tests.support.counting_upstream import CountingUpstream
from tests.support.gateway import GatewayProcess, spawn_gateway
from tests.support.ports import free_port
from tests.support.raw_http import exchange_raw
from tests.support.upstream import Upstream

SPIFFE = "spiffe://meshgate.test/ns/default/sa/orders"
XFCC = "X-Forwarded-Client-Cert"


@dataclass
class Pki:
    ca: CertificateAuthority
    server: Issued
    client: Issued
    stranger: Issued  # a client certificate from a CA the gateway does not trust
    expired: Issued

    def client_context(self, cert: Issued | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca.cert_file))
        if cert is not None:
            context.load_cert_chain(cert.cert_file, cert.key_file)
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = CertificateAuthority(tmp_path / "pki")
    other = CertificateAuthority(tmp_path / "other", "other CA")
    return Pki(
        ca=ca,
        server=ca.issue("gateway", dns=("localhost",), ips=("127.0.0.1",)),
        client=ca.issue("orders", client=True, uris=(SPIFFE,)),
        stranger=other.issue("intruder", client=True, uris=(SPIFFE,)),
        expired=ca.issue("stale", client=True, expired=True),
    )


@pytest.fixture
async def counting() -> AsyncIterator[CountingUpstream]:
    server = await CountingUpstream("a").start()
    yield server
    await server.stop()


def routes(upstream_port: int) -> str:
    return f"""
        routes:
          # A route that would take any request carrying an XFCC header: a client's must never
          # be seen by a predicate.
          - id: by-client-cert
            uri: http://127.0.0.1:{upstream_port}
            predicates:
              - Header=X-Forwarded-Client-Cert, .*
              - Path=/never/**
            filters:
              - PrefixPath=/matched-by-xfcc
          # A filter can't set it either.
          - id: filter-sets-it
            uri: http://127.0.0.1:{upstream_port}
            predicates:
              - Path=/filtered/**
            filters:
              - AddRequestHeader=X-Forwarded-Client-Cert, Hash=forged
          - id: all
            uri: http://127.0.0.1:{upstream_port}
            predicates:
              - Path=/**
        """


def tls_settings(pki: Pki, auth: str = "none") -> dict[str, str]:
    settings = {
        "tls_cert_file": str(pki.server.cert_file),
        "tls_key_file": str(pki.server.key_file),
    }
    if auth != "none":
        settings |= {"tls_client_ca_file": str(pki.ca.cert_file), "tls_client_auth": auth}
    return settings


class Connection:
    """One HTTP/1.1 keep-alive connection over TLS (or plain TCP with ``context=None``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext | None) -> Connection:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            port,
            ssl=context,
            server_hostname="localhost" if context is not None else None,
        )
        return cls(reader, writer)

    @property
    def tls(self) -> ssl.SSLObject:
        tls = self.writer.get_extra_info("ssl_object")
        assert isinstance(tls, ssl.SSLObject)
        return tls

    @property
    def server_fingerprint(self) -> str:
        der = self.tls.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).hexdigest()

    async def get(self, path: str, *headers: tuple[str, str]) -> tuple[int, bytes]:
        lines = [f"GET {path} HTTP/1.1", "Host: localhost", *(f"{n}: {v}" for n, v in headers)]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(5):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await self.writer.wait_closed()


def xfcc_seen(upstream: CountingUpstream) -> list[str]:
    """The XFCC values the last request reaching the upstream carried (every occurrence)."""
    return [value for name, value in upstream.seen[-1].headers if name.lower() == XFCC.lower()]


async def refused(port: int, context: ssl.SSLContext) -> BaseException:
    """The error a client gets trying one request; fails the test if the request is answered.
    (Under TLS 1.3 the client's handshake completes before the server has judged its
    certificate: the refusal arrives on the first read.)"""
    try:
        connection = await Connection.open(port, context)
        try:
            status, _ = await connection.get("/x")
        finally:
            await connection.close()
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError) as exc:
        return exc
    raise AssertionError(f"the request was answered: {status}")


# -- HTTPS -------------------------------------------------------------------------------------
async def test_https_is_served_and_the_upstream_is_told_https(
    pki: Pki, counting: CountingUpstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(routes(counting.port), **tls_settings(pki))
    context = pki.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    connection = await Connection.open(gw.port, context)
    try:
        status, _ = await connection.get("/orders")
        assert status == 200
        assert connection.tls.version() in ("TLSv1.2", "TLSv1.3")
        assert connection.tls.selected_alpn_protocol() == "http/1.1"
        assert connection.server_fingerprint == pki.server.sha256_hex
        seen = dict(counting.seen[-1].headers)
        assert seen["X-Forwarded-Proto"] == "https"
        assert seen["X-Forwarded-Port"] == "443"  # a Host without a port: https's default
        assert seen["Forwarded"].endswith(";proto=https")
        assert XFCC not in seen  # no client certificate asked for
        status, _ = await connection.get("/again")  # keep-alive
        assert status == 200
    finally:
        await connection.close()


def tls11_client() -> ssl.SSLContext:
    """A client that offers nothing newer than TLS 1.1. OpenSSL 3 allows TLS < 1.2 only at
    security level 0, so the client side is lowered to it; otherwise the refusal would be the
    client's own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


async def test_a_tls11_client_is_refused(
    tmp_path: Path, pki: Pki, counting: CountingUpstream, make_gateway: MakeGateway
) -> None:
    # The control: this very client completes a TLS 1.1 handshake with a server that allows
    # it (same certificate), so what refuses it at the gateway is the gateway's floor.
    lenient = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        lenient.minimum_version = ssl.TLSVersion.TLSv1
    lenient.set_ciphers("DEFAULT:@SECLEVEL=0")
    lenient.load_cert_chain(pki.server.cert_file, pki.server.key_file)
    control = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=lenient)
    try:
        port = control.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls11_client())
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.1"
        writer.close()
    finally:
        control.close()
    gw = await make_gateway(routes(counting.port), **tls_settings(pki))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.open_connection("127.0.0.1", gw.port, ssl=tls11_client())
    assert counting.nothing_received()
    # And the listener goes on serving TLS 1.2 clients.
    tls12 = pki.client_context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    connection = await Connection.open(gw.port, tls12)
    assert (await connection.get("/x"))[0] == 200
    assert connection.tls.version() == "TLSv1.2"
    cipher = connection.tls.cipher()
    assert cipher is not None and cipher[0].startswith("ECDHE-")
    await connection.close()


async def test_plain_http_to_the_tls_port_is_never_proxied(
    pki: Pki, counting: CountingUpstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(routes(counting.port), **tls_settings(pki))
    answer = await exchange_raw(gw.port, b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n", timeout=3)
    assert not answer.startswith(b"HTTP/")
    assert counting.nothing_received()


# -- mTLS ---------------------------------------------------------------------------------------
async def test_required_client_auth_refuses_without_a_trusted_certificate(
    pki: Pki, counting: CountingUpstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(routes(counting.port), **tls_settings(pki, "required"))
    for context in (
        pki.client_context(),  # no certificate
        pki.client_context(pki.stranger),  # signed by another CA
        pki.client_context(pki.expired),
    ):
        await refused(gw.port, context)
    assert counting.nothing_received()


async def test_a_verified_client_certificate_goes_upstream_as_xfcc(
    pki: Pki, counting: CountingUpstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(routes(counting.port), **tls_settings(pki, "required"))
    connection = await Connection.open(gw.port, pki.client_context(pki.client))
    try:
        for _ in range(2):  # every request of the connection carries it
            status, _ = await connection.get("/orders")
            assert status == 200
            assert xfcc_seen(counting) == [
                f'Hash={pki.client.sha256_hex};Subject="CN=orders,O=meshgate tests";URI={SPIFFE}'
            ]
    finally:
        await connection.close()


async def test_optional_client_auth_lets_a_client_without_a_certificate_in_without_xfcc(
    pki: Pki, counting: CountingUpstream, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(routes(counting.port), **tls_settings(pki, "optional"))
    anonymous = await Connection.open(gw.port, pki.client_context())
    try:
        assert (await anonymous.get("/x"))[0] == 200
        assert xfcc_seen(counting) == []
    finally:
        await anonymous.close()
    known = await Connection.open(gw.port, pki.client_context(pki.client))
    try:
        assert (await known.get("/x"))[0] == 200
        assert xfcc_seen(counting) == [
            f'Hash={pki.client.sha256_hex};Subject="CN=orders,O=meshgate tests";URI={SPIFFE}'
        ]
    finally:
        await known.close()
    # A certificate presented is still verified: an untrusted one is refused, not ignored.
    counting.reset()
    await refused(gw.port, pki.client_context(pki.stranger))
    assert counting.nothing_received()


async def test_a_clients_own_xfcc_is_removed_with_and_without_tls(
    pki: Pki, counting: CountingUpstream, make_gateway: MakeGateway
) -> None:
    forged = (XFCC, f'Hash={"0" * 64};Subject="CN=admin";URI=spiffe://meshgate.test/admin')
    plain = await make_gateway(routes(counting.port))
    connection = await Connection.open(plain.port, None)
    try:
        assert (await connection.get("/never/x", forged, (XFCC.lower(), "By=x")))[0] == 200
    finally:
        await connection.close()
    assert counting.seen[-1].path == "/never/x"
    assert xfcc_seen(counting) == []
    connection = await Connection.open(plain.port, None)
    try:
        assert (await connection.get("/filtered/x"))[0] == 200
    finally:
        await connection.close()
    assert xfcc_seen(counting) == []
    mtls = await make_gateway(routes(counting.port), **tls_settings(pki, "required"))
    connection = await Connection.open(mtls.port, pki.client_context(pki.client))
    try:
        assert (await connection.get("/never/x", forged))[0] == 200
    finally:
        await connection.close()
    assert xfcc_seen(counting) == [
        f'Hash={pki.client.sha256_hex};Subject="CN=orders,O=meshgate tests";URI={SPIFFE}'
    ]
    # Neither request matched the route whose predicate reads the header: no route saw it.
    assert counting.seen[-1].path == "/never/x"
    connection = await Connection.open(mtls.port, pki.client_context(pki.client))
    try:
        assert (await connection.get("/filtered/x"))[0] == 200
    finally:
        await connection.close()
    assert xfcc_seen(counting)[0].startswith(f"Hash={pki.client.sha256_hex};")
    assert len(xfcc_seen(counting)) == 1


async def test_websocket_over_mtls(pki: Pki, upstream: Upstream, make_gateway: MakeGateway) -> None:
    gw = await make_gateway(
        f"""
        routes:
          - id: ws
            uri: ws://127.0.0.1:{upstream.port}
            predicates:
              - Path=/ws/**
        """,
        **tls_settings(pki, "required"),
    )
    async with (
        aiohttp.ClientSession() as client,
        client.ws_connect(
            f"https://localhost:{gw.port}/ws/chat",
            ssl=pki.client_context(pki.client),
            server_hostname="localhost",
        ) as ws,
    ):
        for i in range(3):
            await ws.send_str(f"hello {i}")
            assert await ws.receive_str() == f"a: hello {i}"
        payload = bytes(range(256)) * 400
        await ws.send_bytes(payload)
        assert await ws.receive_bytes() == payload


# -- the real process ---------------------------------------------------------------------------
def start_failure(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway"],
        env={
            **os.environ,
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(free_port()),
            "GATEWAY_MANAGEMENT_PORT": str(free_port()),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )


def test_start_up_refuses_unusable_tls_settings(tmp_path: Path, pki: Pki) -> None:
    half = start_failure(tmp_path, GATEWAY_TLS_CERT_FILE=str(pki.server.cert_file))
    assert half.returncode == 2
    assert "GATEWAY_TLS_CERT_FILE is set but GATEWAY_TLS_KEY_FILE is not" in half.stderr
    mismatched = start_failure(
        tmp_path,
        GATEWAY_TLS_CERT_FILE=str(pki.server.cert_file),
        GATEWAY_TLS_KEY_FILE=str(pki.client.key_file),
    )
    assert mismatched.returncode == 2
    assert f"GATEWAY_TLS_KEY_FILE: {pki.client.key_file} is not the private key" in (
        mismatched.stderr
    )
    no_ca = start_failure(
        tmp_path,
        GATEWAY_TLS_CERT_FILE=str(pki.server.cert_file),
        GATEWAY_TLS_KEY_FILE=str(pki.server.key_file),
        GATEWAY_TLS_CLIENT_AUTH="required",
    )
    assert no_ca.returncode == 2
    assert "GATEWAY_TLS_CLIENT_AUTH=required needs GATEWAY_TLS_CLIENT_CA_FILE" in no_ca.stderr


@pytest.fixture
def live_files(tmp_path: Path, pki: Pki) -> tuple[Path, Path, Path]:
    """Certificate, key and client CA where the process reads them: replaced in place."""
    cert, key, client_ca = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "clients.pem"
    cert.write_bytes(pki.server.cert_file.read_bytes())
    key.write_bytes(pki.server.key_file.read_bytes())
    client_ca.write_bytes(pki.ca.cert_file.read_bytes())
    return cert, key, client_ca


async def wait_for_log(process: GatewayProcess, text: str, count: int = 1) -> None:
    deadline = time.monotonic() + 10
    while process.log().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{process.log()}"
        await asyncio.sleep(0.05)


async def test_sighup_swaps_the_certificate_under_open_connections(
    tmp_path: Path, pki: Pki, counting: CountingUpstream, live_files: tuple[Path, Path, Path]
) -> None:
    cert, key, client_ca = live_files
    config = tmp_path / "routes.yml"
    config.write_text(textwrap.dedent(routes(counting.port)))
    process = spawn_gateway(
        config,
        tmp_path,
        GATEWAY_TLS_CERT_FILE=str(cert),
        GATEWAY_TLS_KEY_FILE=str(key),
        GATEWAY_TLS_CLIENT_CA_FILE=str(client_ca),
        GATEWAY_TLS_CLIENT_AUTH="required",
    )
    try:
        kept = await Connection.open(process.port, pki.client_context(pki.client))
        assert (await kept.get("/before"))[0] == 200
        assert kept.server_fingerprint == pki.server.sha256_hex

        # Rotation: a new server certificate, and client certificates from a new CA only.
        renewed = pki.ca.issue("gateway-renewed", dns=("localhost",))
        new_ca = CertificateAuthority(tmp_path / "new-ca", "new client CA")
        new_client = new_ca.issue("orders-2", client=True, uris=(SPIFFE,))
        cert.write_bytes(renewed.cert_file.read_bytes())
        key.write_bytes(renewed.key_file.read_bytes())
        client_ca.write_bytes(new_ca.cert_file.read_bytes())
        process.signal(signal.SIGHUP)
        await wait_for_log(process, f"TLS certificate reloaded (sha256 {renewed.sha256_hex})")

        # The open keep-alive connection goes on, on the session it has.
        assert (await kept.get("/after"))[0] == 200
        assert kept.server_fingerprint == pki.server.sha256_hex
        # A new connection meets the new certificate and the new client CA.
        fresh = await Connection.open(process.port, pki.client_context(new_client))
        assert (await fresh.get("/fresh"))[0] == 200
        assert fresh.server_fingerprint == renewed.sha256_hex
        assert xfcc_seen(counting)[0].startswith(f"Hash={new_client.sha256_hex};")
        await fresh.close()
        await refused(process.port, pki.client_context(pki.client))  # the old CA is gone

        # A reload that can't load keeps what runs.
        key.write_text("not a key")
        process.signal(signal.SIGHUP)
        await wait_for_log(process, "TLS reload rejected, keeping the previous certificate")
        assert "GATEWAY_TLS_KEY_FILE" in process.log()
        again = await Connection.open(process.port, pki.client_context(new_client))
        assert (await again.get("/still"))[0] == 200
        assert again.server_fingerprint == renewed.sha256_hex
        await again.close()
        assert (await kept.get("/last"))[0] == 200
        await kept.close()
    finally:
        assert process.stop() == 0, process.log()
    assert "Traceback" not in process.log()


async def test_sighup_reloads_every_worker(
    tmp_path: Path, pki: Pki, counting: CountingUpstream, live_files: tuple[Path, Path, Path]
) -> None:
    cert, key, _ = live_files
    config = tmp_path / "routes.yml"
    config.write_text(textwrap.dedent(routes(counting.port)))
    process = spawn_gateway(
        config,
        tmp_path,
        GATEWAY_WORKERS="2",
        GATEWAY_TLS_CERT_FILE=str(cert),
        GATEWAY_TLS_KEY_FILE=str(key),
    )
    try:
        await wait_for_log(process, "listening on", count=2)  # both have their signal handlers
        renewed = pki.ca.issue("gateway-renewed", dns=("localhost",))
        cert.write_bytes(renewed.cert_file.read_bytes())
        key.write_bytes(renewed.key_file.read_bytes())
        process.signal(signal.SIGHUP)  # the supervisor's: it tells each worker
        await wait_for_log(process, "TLS certificate reloaded", count=2)
        reloaded = {
            int(line.split("[", 1)[1].split("]", 1)[0])  # the log line's [pid]
            for line in process.log().splitlines()
            if "TLS certificate reloaded" in line
        }
        assert reloaded == set(process.worker_pids())
        for _ in range(8):  # SO_REUSEPORT spreads new connections over both workers
            fresh = await Connection.open(process.port, pki.client_context())
            assert fresh.server_fingerprint == renewed.sha256_hex
            await fresh.close()
    finally:
        assert process.stop() == 0, process.log()


# -- memory ---------------------------------------------------------------------------------------


def _alive(name: str) -> int:
    return sum(1 for o in gc.get_objects() if type(o).__name__ == name)


@pytest.mark.parametrize("tls", [False, True])
async def test_closed_connections_are_freed_without_waiting_for_the_collector(
    pki: Pki, counting: CountingUpstream, make_gateway: MakeGateway, tls: bool
) -> None:
    """The gateway runs with a rare full collection (process.py tunes the GC): a closed
    connection must be freed by reference counting, or each one holds a TLS transport's
    buffers until then (1,000 of them were ~200 MiB)."""
    gw = await make_gateway(routes(counting.port), **(tls_settings(pki) if tls else {}))
    context = pki.client_context() if tls else None

    async def one() -> None:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", gw.port, ssl=context, server_hostname="localhost" if tls else None
        )
        writer.write(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 200")
        writer.close()
        await writer.wait_closed()

    gc.collect()
    gc.disable()
    try:
        before = _alive("HttpServerProtocol")
        for _ in range(4):
            await asyncio.gather(*(one() for _ in range(25)))
        await asyncio.sleep(0.2)  # every connection_lost has run
        assert _alive("HttpServerProtocol") - before <= 2
    finally:
        gc.enable()
