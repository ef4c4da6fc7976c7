"""The proxy port's TLS context: which GATEWAY_TLS_* combinations start, what a bad file says,
the protocol floor and cipher list, and a reload that swaps certificate and client CA for new
handshakes (or, failing, changes nothing). Handshakes are real, over memory BIOs."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.errors import ConfigError
from gateway.security.tls_server import (
    ServerTls,
    ServerTlsFiles,
    build_context,
    server_tls_files,
)
from tests.support.certs import CertificateAuthority, Issued
from tests.unit.security.tls_memory import (
    client_context,
    handshake,
    peer_fingerprint,
    write_garbage,
)


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "ca")


@pytest.fixture
def server_cert(ca: CertificateAuthority) -> Issued:
    return ca.issue("server", dns=("localhost",), ips=("127.0.0.1",))


def files_for(
    cert: Issued, *, ca: CertificateAuthority | None = None, auth: str = "none"
) -> ServerTlsFiles:
    files = server_tls_files(
        str(cert.cert_file),
        str(cert.key_file),
        str(ca.cert_file) if ca is not None else None,
        auth,  # type: ignore[arg-type]
    )
    assert files is not None
    return files


# -- which settings start -----------------------------------------------------------------------
def test_no_certificate_and_no_key_is_plain_http() -> None:
    assert server_tls_files(None, None) is None


@pytest.mark.parametrize(
    ("cert", "key", "named"),
    [
        ("/etc/cert.pem", None, "GATEWAY_TLS_CERT_FILE is set but GATEWAY_TLS_KEY_FILE is not"),
        (None, "/etc/key.pem", "GATEWAY_TLS_KEY_FILE is set but GATEWAY_TLS_CERT_FILE is not"),
    ],
)
def test_a_certificate_without_its_key_or_the_reverse_is_refused(
    cert: str | None, key: str | None, named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        server_tls_files(cert, key)
    assert named in str(caught.value)


def test_required_or_optional_client_auth_needs_a_ca() -> None:
    for auth in ("required", "optional"):
        with pytest.raises(ConfigError) as caught:
            server_tls_files("c.pem", "k.pem", None, auth)
        assert f"GATEWAY_TLS_CLIENT_AUTH={auth} needs GATEWAY_TLS_CLIENT_CA_FILE" in str(
            caught.value
        )


def test_a_client_ca_with_client_auth_none_is_refused_as_a_false_mtls() -> None:
    with pytest.raises(ConfigError) as caught:
        server_tls_files("c.pem", "k.pem", "ca.pem", "none")
    assert "GATEWAY_TLS_CLIENT_CA_FILE is set but GATEWAY_TLS_CLIENT_AUTH is none" in str(
        caught.value
    )


def test_client_settings_without_tls_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        server_tls_files(None, None, "ca.pem", "required")
    assert "need TLS on the listener" in str(caught.value)


# -- what a bad file says ---------------------------------------------------------------------
def test_an_unreadable_certificate_names_the_variable_and_the_file(
    tmp_path: Path, server_cert: Issued
) -> None:
    missing = tmp_path / "nowhere.pem"
    files = ServerTlsFiles(str(missing), str(server_cert.key_file))
    with pytest.raises(ConfigError) as caught:
        build_context(files)
    assert str(caught.value).startswith(f"GATEWAY_TLS_CERT_FILE: cannot read {missing}: ")
    assert "No such file" in str(caught.value)


def test_a_file_that_holds_no_certificate_is_named(tmp_path: Path, server_cert: Issued) -> None:
    bad = tmp_path / "bad.pem"
    write_garbage(bad)
    with pytest.raises(ConfigError) as caught:
        build_context(ServerTlsFiles(str(bad), str(server_cert.key_file)))
    assert str(caught.value).startswith(f"GATEWAY_TLS_CERT_FILE: {bad} holds no PEM certificate")


def test_a_key_that_is_not_the_certificates_is_named(
    ca: CertificateAuthority, server_cert: Issued
) -> None:
    other = ca.issue("other")
    with pytest.raises(ConfigError) as caught:
        build_context(ServerTlsFiles(str(server_cert.cert_file), str(other.key_file)))
    assert str(caught.value) == (
        f"GATEWAY_TLS_KEY_FILE: {other.key_file} is not the private key of the certificate "
        f"in {server_cert.cert_file}"
    )


def test_an_encrypted_key_is_refused_without_prompting(tmp_path: Path, server_cert: Issued) -> None:
    key = serialization.load_pem_private_key(server_cert.key_file.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(ConfigError) as caught:
        build_context(ServerTlsFiles(str(server_cert.cert_file), str(encrypted)))
    assert str(caught.value).startswith(
        f"GATEWAY_TLS_KEY_FILE: {encrypted} is an encrypted private key"
    )


def test_a_key_file_that_holds_no_key_is_named(tmp_path: Path, server_cert: Issued) -> None:
    with pytest.raises(ConfigError) as caught:
        build_context(ServerTlsFiles(str(server_cert.cert_file), str(server_cert.cert_file)))
    assert str(caught.value).startswith(
        f"GATEWAY_TLS_KEY_FILE: {server_cert.cert_file} holds no PEM private key"
    )


def test_a_bad_client_ca_file_is_named(tmp_path: Path, server_cert: Issued) -> None:
    bad = tmp_path / "ca.pem"
    write_garbage(bad)
    files = ServerTlsFiles(
        str(server_cert.cert_file), str(server_cert.key_file), str(bad), "required"
    )
    with pytest.raises(ConfigError) as caught:
        build_context(files)
    assert str(caught.value).startswith(f"GATEWAY_TLS_CLIENT_CA_FILE: {bad} holds no PEM")


# -- the context ----------------------------------------------------------------------------------
def test_the_context_floor_is_tls12_with_ecdhe_aead_ciphers_and_http11_alpn(
    server_cert: Issued,
) -> None:
    context, fingerprint = build_context(files_for(server_cert))
    assert fingerprint == server_cert.sha256_hex
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    assert context.options & ssl.OP_NO_COMPRESSION
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    for cipher in tls12:
        assert cipher["kea"] == "kx-ecdhe", cipher["name"]
        assert cipher["aead"], cipher["name"]
    client = client_context()
    client.set_alpn_protocols(["h2", "http/1.1"])
    near, _ = handshake(context, client)
    assert near.selected_alpn_protocol() == "http/1.1"


def test_a_tls12_client_offering_only_cbc_ciphers_is_refused(server_cert: Issued) -> None:
    context, _ = build_context(files_for(server_cert))
    client = client_context()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384")
    with pytest.raises(ssl.SSLError, match=r"NO_SHARED_CIPHER|no shared cipher"):
        handshake(context, client)
    client.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")  # the same client, an AEAD suite
    near, _ = handshake(context, client)
    assert near.version() == "TLSv1.2"


@pytest.mark.parametrize(
    ("auth", "mode"), [("optional", ssl.CERT_OPTIONAL), ("required", ssl.CERT_REQUIRED)]
)
def test_client_auth_sets_the_verify_mode(
    ca: CertificateAuthority, server_cert: Issued, auth: str, mode: ssl.VerifyMode
) -> None:
    context, _ = build_context(files_for(server_cert, ca=ca, auth=auth))
    assert context.verify_mode == mode


def test_required_refuses_a_client_without_a_certificate_and_verifies_one(
    ca: CertificateAuthority, server_cert: Issued
) -> None:
    context, _ = build_context(files_for(server_cert, ca=ca, auth="required"))
    with pytest.raises(ssl.SSLError, match=r"PEER_DID_NOT_RETURN_A_CERTIFICATE|did not return"):
        handshake(context, client_context(ca))
    client = ca.issue("client", client=True)
    _, far = handshake(context, client_context(ca, client))
    assert peer_fingerprint(far) == client.sha256_hex


# -- reload -------------------------------------------------------------------------------------
def test_reload_gives_new_handshakes_the_new_certificate(
    ca: CertificateAuthority, server_cert: Issued
) -> None:
    tls = ServerTls(files_for(server_cert))
    near, _ = handshake(tls.context, client_context(ca))
    assert peer_fingerprint(near) == server_cert.sha256_hex
    renewed = ca.issue("server-renewed", dns=("localhost",))
    server_cert.cert_file.write_bytes(renewed.cert_file.read_bytes())
    server_cert.key_file.write_bytes(renewed.key_file.read_bytes())
    assert peer_fingerprint(handshake(tls.context, client_context(ca))[0]) == (
        server_cert.sha256_hex
    )  # nothing changes before the reload
    tls.reload()
    assert tls.fingerprint == renewed.sha256_hex
    # The listener's context stays the one the server was created with; handshakes on it
    # now present the renewed certificate.
    near, _ = handshake(tls.context, client_context(ca))
    assert peer_fingerprint(near) == renewed.sha256_hex


def test_a_failed_reload_changes_nothing(ca: CertificateAuthority, server_cert: Issued) -> None:
    tls = ServerTls(files_for(server_cert))
    before = tls.current
    write_garbage(server_cert.cert_file)
    with pytest.raises(ConfigError, match="GATEWAY_TLS_CERT_FILE"):
        tls.reload()
    assert tls.current is before
    assert tls.fingerprint == server_cert.sha256_hex
    near, _ = handshake(tls.context, client_context(ca))
    assert peer_fingerprint(near) == server_cert.sha256_hex


def test_a_mismatched_key_on_reload_keeps_the_running_pair(
    ca: CertificateAuthority, server_cert: Issued
) -> None:
    tls = ServerTls(files_for(server_cert))
    renewed = ca.issue("server-renewed", dns=("localhost",))
    server_cert.cert_file.write_bytes(renewed.cert_file.read_bytes())  # key not yet replaced
    with pytest.raises(ConfigError, match="is not the private key"):
        tls.reload()
    near, _ = handshake(tls.context, client_context(ca))
    assert peer_fingerprint(near) == server_cert.sha256_hex


def test_reload_replaces_the_client_ca_for_new_handshakes(
    tmp_path: Path, ca: CertificateAuthority, server_cert: Issued
) -> None:
    client_ca_file = tmp_path / "client-ca.pem"
    client_ca_file.write_bytes(ca.cert_file.read_bytes())
    files = ServerTlsFiles(
        str(server_cert.cert_file), str(server_cert.key_file), str(client_ca_file), "required"
    )
    tls = ServerTls(files)
    old_client = ca.issue("old-client", client=True)
    handshake(tls.context, client_context(ca, old_client))
    other = CertificateAuthority(tmp_path / "other", "other CA")
    new_client = other.issue("new-client", client=True)
    with pytest.raises(ssl.SSLError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        handshake(tls.context, client_context(ca, new_client))
    client_ca_file.write_bytes(other.cert_file.read_bytes())  # the old CA is dropped
    tls.reload()
    _, far = handshake(tls.context, client_context(ca, new_client))
    assert peer_fingerprint(far) == new_client.sha256_hex
    with pytest.raises(ssl.SSLError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        handshake(tls.context, client_context(ca, old_client))
