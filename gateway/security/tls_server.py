"""Downstream TLS: the proxy listener's ``ssl.SSLContext``, built from PEM files and reloaded
in place of the running one without touching open connections.

The listener is bound to one context for its lifetime (asyncio takes it at ``create_server``).
That context's servername callback, which OpenSSL calls early in every handshake whether or not
the client sent SNI, hands the handshake the context of the last good load. So a reload builds
a whole new context (certificate, key and client CA store together: a CA removed from the file
is no longer trusted) and swaps one reference; connections already open keep the session they
have, and a load that fails changes nothing.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from gateway.errors import ConfigError

ClientAuth = Literal["none", "optional", "required"]

CERT_VAR = "GATEWAY_TLS_CERT_FILE"
KEY_VAR = "GATEWAY_TLS_KEY_FILE"
CLIENT_CA_VAR = "GATEWAY_TLS_CLIENT_CA_FILE"
CLIENT_AUTH_VAR = "GATEWAY_TLS_CLIENT_AUTH"

# TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD ciphers only, in the order of
# Mozilla's "intermediate" profile. TLS 1.3 suites are all AEAD; OpenSSL's defaults stay.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
# The engine speaks HTTP/1.1 only: a client offering h2 alone gets no ALPN answer, and
# talks HTTP/1.1 or leaves.
ALPN = ("http/1.1",)

_VERIFY = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


@dataclass(frozen=True, slots=True)
class ServerTlsFiles:
    """Where the listener's certificate chain, key and client CA are (PEM), and whether a
    client certificate is asked for (``optional``) or demanded (``required``)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth: ClientAuth = "none"

    @property
    def asks_client_cert(self) -> bool:
        return self.client_auth != "none"


def server_tls_files(
    cert_file: str | None,
    key_file: str | None,
    client_ca_file: str | None = None,
    client_auth: ClientAuth = "none",
) -> ServerTlsFiles | None:
    """The TLS files the ``GATEWAY_TLS_*`` settings name, or None when TLS is off. Raises
    ``ConfigError`` (naming the variables) for a combination that can't be what was meant:
    a certificate without its key or the other way round, client settings without TLS, client
    authentication without a CA to verify against, or a CA with client authentication off
    (which would look like mTLS and check nothing)."""
    if cert_file is None and key_file is None:
        if client_ca_file is not None or client_auth != "none":
            raise ConfigError(
                f"{CLIENT_CA_VAR} and {CLIENT_AUTH_VAR} need TLS on the listener: "
                f"set {CERT_VAR} and {KEY_VAR} too",
                "environment",
            )
        return None
    if cert_file is None or key_file is None:
        given, missing = (CERT_VAR, KEY_VAR) if key_file is None else (KEY_VAR, CERT_VAR)
        raise ConfigError(
            f"{given} is set but {missing} is not: HTTPS needs both the certificate and its key",
            "environment",
        )
    if client_auth != "none" and client_ca_file is None:
        raise ConfigError(
            f"{CLIENT_AUTH_VAR}={client_auth} needs {CLIENT_CA_VAR}, the CA that client "
            "certificates are verified against",
            "environment",
        )
    if client_auth == "none" and client_ca_file is not None:
        raise ConfigError(
            f"{CLIENT_CA_VAR} is set but {CLIENT_AUTH_VAR} is none, so no client certificate "
            "would be asked for: set it to optional or required, or unset the CA file",
            "environment",
        )
    return ServerTlsFiles(cert_file, key_file, client_ca_file, client_auth)


class ServerTls:
    """The listener's TLS: ``context`` is what the server is created with; ``reload`` re-reads
    the files, and new handshakes use them from then on. Raises ``ConfigError`` on a file that
    can't be used (both at construction and on reload, which then keeps the running one)."""

    def __init__(self, files: ServerTlsFiles) -> None:
        self.files = files
        self.context, self.fingerprint = build_context(files)
        self._current = self.context
        self.context.sni_callback = self._select

    @property
    def current(self) -> ssl.SSLContext:
        """The context new handshakes get: the last one that loaded."""
        return self._current

    def reload(self) -> None:
        context, fingerprint = build_context(self.files)
        self._current = context
        self.fingerprint = fingerprint

    def _select(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        current = self._current
        if current is not self.context:
            # Certificate, key and CA store switch; the verify mode (fixed: the client_auth
            # setting is not reloaded) stays the listener's.
            connection.context = current


def build_context(files: ServerTlsFiles) -> tuple[ssl.SSLContext, str]:
    """A server context for ``files`` and the SHA-256 fingerprint (hex) of its certificate.
    The files are checked with ``cryptography`` first so that an error names the file at
    fault and what is wrong with it; OpenSSL then loads them."""
    chain = _certificates(_read(files.cert_file, CERT_VAR), files.cert_file, CERT_VAR)
    key = _private_key(_read(files.key_file, KEY_VAR), files.key_file)
    leaf = chain[0]
    if _public_bytes(leaf.public_key()) != _public_bytes(key.public_key()):
        raise ConfigError(
            f"{files.key_file} is not the private key of the certificate in {files.cert_file}",
            KEY_VAR,
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    # No TLS compression (CRIME) and no client-initiated renegotiation (a CPU lever for a
    # client, and a request-splicing one).
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(list(ALPN))
    try:
        context.load_cert_chain(files.cert_file, files.key_file, password=_no_password)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise ConfigError(
            f"OpenSSL could not load {files.cert_file} with {files.key_file}: {exc}", CERT_VAR
        ) from exc
    if files.client_ca_file is not None:
        path = files.client_ca_file
        authorities = _certificates(_read(path, CLIENT_CA_VAR), path, CLIENT_CA_VAR)
        # Exactly the certificates read, re-encoded: no text around them reaches OpenSSL.
        pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in authorities)
        try:
            context.load_verify_locations(cadata=pem)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"OpenSSL could not load {path}: {exc}", CLIENT_CA_VAR) from exc
    context.verify_mode = _VERIFY[files.client_auth]
    return context, leaf.fingerprint(hashes.SHA256()).hex()


def _read(path: str, variable: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", variable) from exc


def _certificates(pem: bytes, path: str, variable: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ConfigError(f"{path} holds no PEM certificate", variable) from exc


def _private_key(pem: bytes, path: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except TypeError as exc:  # a password is needed
        raise ConfigError(
            f"{path} is an encrypted private key: give it unencrypted (file mode 0600)", KEY_VAR
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{path} holds no PEM private key", KEY_VAR) from exc


def _public_bytes(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _no_password() -> bytes:
    # Never let OpenSSL prompt on the terminal for a key's pass phrase (checked above).
    raise ValueError("the private key is encrypted")
