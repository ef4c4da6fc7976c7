"""The verified client certificate and its X-Forwarded-Client-Cert element: Envoy's keys,
quoting and escaping, names that must not break a header, and one description per certificate."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.security.client_cert import ClientCertificates, describe, xfcc_element
from gateway.security.tls_server import ServerTlsFiles, build_context
from tests.support.certs import CertificateAuthority
from tests.unit.security.tls_memory import client_context, handshake

SPIFFE = "spiffe://meshgate.test/ns/default/sa/orders"


def self_signed(
    subject: list[x509.NameAttribute[str]], sans: list[x509.GeneralName] | None = None
) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(subject)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_hash_subject_and_first_uri_in_envoys_format() -> None:
    der = self_signed(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lyft"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Test Client"),
        ],
        [
            x509.DNSName("client.test"),
            x509.UniformResourceIdentifier(SPIFFE),
            x509.UniformResourceIdentifier("spiffe://meshgate.test/second"),
        ],
    )
    described = describe(der)
    digest = hashlib.sha256(der).hexdigest()
    assert described.sha256 == digest
    # RFC 4514 order: the most specific RDN first, as Envoy (OpenSSL's RFC 2253) prints it.
    assert described.subject == "CN=Test Client,O=Lyft,C=US"
    assert described.uri == SPIFFE
    assert described.xfcc == (
        f'Hash={digest};Subject="CN=Test Client,O=Lyft,C=US";URI={SPIFFE}'.encode()
    )


def test_without_a_uri_san_there_is_no_uri_key() -> None:
    der = self_signed(
        [x509.NameAttribute(NameOID.COMMON_NAME, "dns only")], [x509.DNSName("a.test")]
    )
    assert describe(der).uri is None
    assert describe(der).xfcc.endswith(b';Subject="CN=dns only"')
    assert b"URI=" not in describe(self_signed([x509.NameAttribute(NameOID.COMMON_NAME, "x")])).xfcc


def test_quotes_and_backslashes_in_the_subject_are_escaped() -> None:
    der = self_signed([x509.NameAttribute(NameOID.COMMON_NAME, 'Ann "Admin", ops\\eu')])
    described = describe(der)
    # RFC 4514 escapes the DN's own specials with backslashes ...
    assert described.subject == 'CN=Ann \\"Admin\\"\\, ops\\\\eu'
    # ... and the quoted XFCC value escapes each backslash and quote once more.
    assert described.xfcc.endswith(b';Subject="CN=Ann \\\\\\"Admin\\\\\\"\\\\, ops\\\\\\\\eu"')


def test_control_and_non_ascii_characters_cannot_break_the_header() -> None:
    der = self_signed(
        [x509.NameAttribute(NameOID.COMMON_NAME, "M\u00fcller\r\nX-Evil: 1")],
        [x509.UniformResourceIdentifier("spiffe://t/a b\r\nX-Evil: 1")],
    )
    described = describe(der)
    assert described.subject == "CN=M\\C3\\BCller\\0D\\0AX-Evil: 1"
    assert described.uri == "spiffe://t/a%20b%0D%0AX-Evil:%201"
    assert b"\r" not in described.xfcc and b"\n" not in described.xfcc
    described.xfcc.decode("ascii")


@pytest.mark.parametrize(
    ("uri", "written"),
    [
        ("spiffe://t/plain", "URI=spiffe://t/plain"),
        ("https://t/x?a=b", 'URI="https://t/x?a=b"'),
        ("urn:a;b,c", 'URI="urn:a;b,c"'),
    ],
)
def test_a_uri_is_quoted_only_when_it_holds_a_separator(uri: str, written: str) -> None:
    assert xfcc_element("ab", "CN=x", uri).decode().endswith(";" + written)


class _Transport:
    """The one transport call the identity reads."""

    def __init__(self, ssl_object: Any) -> None:
        self._ssl_object = ssl_object

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._ssl_object if name == "ssl_object" else default


def test_a_connections_verified_certificate_is_described_once(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    server = ca.issue("server", dns=("localhost",))
    client = ca.issue("orders", client=True, uris=(SPIFFE,))
    files = ServerTlsFiles(
        str(server.cert_file), str(server.key_file), str(ca.cert_file), "optional"
    )
    context, _ = build_context(files)
    identify = ClientCertificates()
    _, first = handshake(context, client_context(ca, client))
    _, second = handshake(context, client_context(ca, client))
    one = identify(_Transport(first))  # type: ignore[arg-type]
    assert one is not None
    assert one.sha256 == client.sha256_hex
    assert one.subject == "CN=orders,O=meshgate tests"
    assert one.uri == SPIFFE
    assert identify(_Transport(second)) is one  # type: ignore[arg-type]
    # No certificate (optional), or no TLS at all: no identity.
    _, anonymous = handshake(context, client_context(ca))
    assert identify(_Transport(anonymous)) is None  # type: ignore[arg-type]
    assert identify(_Transport(None)) is None  # type: ignore[arg-type]
