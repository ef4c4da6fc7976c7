"""The verified client certificate of a TLS connection, and the ``X-Forwarded-Client-Cert``
element (Envoy's format) the upstream learns it from.

Envoy's rules for the element: ``Key=Value`` pairs joined by ``;``; a value holding ``,``,
``;`` or ``=`` is double-quoted, and so is ``Subject`` always; a ``"`` inside a quoted value is
written ``\\"``. A backslash inside one is written ``\\\\`` too (a quoted-string's escape): an
RFC 4514 DN escapes with backslashes itself, and without it ``\\"`` would be ambiguous.

Only what OpenSSL verified is described: the engine asks once per connection, after the
handshake, and the same certificate is parsed once however often its client reconnects.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl

from cryptography import x509

from gateway.exchange import ClientCertificate

# Distinct certificates remembered; a full cache is simply emptied (as forwarded.py's).
_CACHE_SIZE = 1024
_MUST_QUOTE = frozenset(',;="\\')


class ClientCertificates:
    """``identify(transport)``: the verified client certificate of a TLS connection, or None
    (plain HTTP, or a client that sent none under ``optional``)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[bytes, ClientCertificate] = {}

    def __call__(self, transport: asyncio.BaseTransport) -> ClientCertificate | None:
        connection = transport.get_extra_info("ssl_object")
        if not isinstance(connection, ssl.SSLObject | ssl.SSLSocket):
            return None
        der = connection.getpeercert(binary_form=True)
        if not der:
            return None
        described = self._cache.get(der)
        if described is None:
            described = describe(der)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[der] = described
        return described


def describe(der: bytes) -> ClientCertificate:
    """The certificate's hash, subject and first URI SAN, and its XFCC element. A certificate
    OpenSSL accepted but ``cryptography`` can't read still gets its hash (and an empty
    subject): the upstream is told who, as far as it can be said, never a wrong name."""
    digest = hashlib.sha256(der).hexdigest()
    subject = ""
    uri: str | None = None
    try:
        cert = x509.load_der_x509_certificate(der)
        subject = _printable_dn(cert.subject.rfc4514_string())
        uri = _first_uri(cert)
    except ValueError:
        pass
    return ClientCertificate(digest, subject, uri, xfcc_element(digest, subject, uri))


def xfcc_element(digest: str, subject: str, uri: str | None) -> bytes:
    """``Hash=<hex>;Subject="<DN>"[;URI=<uri>]``, quoted and escaped as Envoy documents it."""
    parts = [f"Hash={digest}", f"Subject={_quoted(subject)}"]
    if uri is not None:
        parts.append(f"URI={_quoted(uri) if _MUST_QUOTE.intersection(uri) else uri}")
    return ";".join(parts).encode("ascii")


def _first_uri(cert: x509.Certificate) -> str | None:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    return _printable_uri(uris[0]) if uris else None


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _printable_dn(dn: str) -> str:
    """The DN with every character outside printable ASCII written as RFC 4514's ``\\XX``
    escapes of its UTF-8 bytes (as OpenSSL's RFC 2253 printing does): a header value can't
    carry CR, LF or NUL, and stays ASCII."""
    if dn.isascii() and dn.isprintable():
        return dn
    return "".join(
        ch if " " <= ch <= "~" else "".join(f"\\{b:02X}" for b in ch.encode("utf-8")) for ch in dn
    )


def _printable_uri(uri: str) -> str:
    """The URI with anything outside printable ASCII (and space) percent-encoded."""
    if uri.isascii() and uri.isprintable() and " " not in uri:
        return uri
    return "".join(
        ch if "!" <= ch <= "~" else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in uri
    )
