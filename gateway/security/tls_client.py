"""The TLS client context of every upstream connection: built once at start from settings and
handed to the connection pool, so routes, retargeted URIs and mirrored copies all verify the
same way.

Verification is on by default: the system's CAs plus ``GATEWAY_UPSTREAM_CA_FILE`` and
``GATEWAY_UPSTREAM_TRUSTED_CERTIFICATES`` (which the route file's
``httpclient.ssl.trusted-x509-certificates`` sets); the certificate must match the name
connected to (SNI and hostname check: the URI's host, an instance's ``tls-server-name``, or —
for an instance registered by IP — its IP SAN).
``GATEWAY_UPSTREAM_CLIENT_CERT_FILE``/``_KEY_FILE`` present a client certificate (mTLS to the
mesh). Turning verification off is possible and said loudly at start.

The context is a plain ``ssl.SSLContext``: any client may use it (aiohttp's ``ssl=`` takes it
as it is), though code that must not load ``gateway`` (the east-west client) builds its own.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from gateway.errors import ConfigError

log = logging.getLogger("meshgate.tls")

CA_FILE = "GATEWAY_UPSTREAM_CA_FILE"
TRUSTED = "GATEWAY_UPSTREAM_TRUSTED_CERTIFICATES (httpclient.ssl.trusted-x509-certificates)"
CLIENT_CERT = "GATEWAY_UPSTREAM_CLIENT_CERT_FILE"
CLIENT_KEY = "GATEWAY_UPSTREAM_CLIENT_KEY_FILE"
# Where a mistake in these settings is reported (they come from the environment, or from the
# route file's Spring section merged under it).
LOCATION = "upstream TLS"


@dataclass(frozen=True, slots=True)
class UpstreamTlsOptions:
    """What the upstream TLS context is made of (``Settings.upstream_*``)."""

    verify: bool = True
    ca_file: str | None = None
    trusted_certificates: tuple[str, ...] = ()
    client_cert_file: str | None = None
    client_key_file: str | None = None


def client_context(options: UpstreamTlsOptions) -> ssl.SSLContext:
    """The context for every TLS connection to an upstream. Raises ``ConfigError`` naming the
    setting for a CA or client certificate that cannot be loaded, or a client certificate
    without its key (or the other way round)."""
    if (options.client_cert_file is None) != (options.client_key_file is None):
        given, missing = (
            (CLIENT_CERT, CLIENT_KEY)
            if options.client_key_file is None
            else (CLIENT_KEY, CLIENT_CERT)
        )
        raise ConfigError(
            f"{given} is set but {missing} is not: a client certificate needs both "
            "(the certificate chain and its private key, PEM)",
            LOCATION,
        )
    # SERVER_AUTH: the system's trust store, CERT_REQUIRED and the hostname check; TLS 1.2 as
    # the floor, as for the downstream listener.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The data plane speaks HTTP/1.1 only: a server that would pick h2 must not.
    context.set_alpn_protocols(["http/1.1"])
    # CA files are loaded even when verification is off, so a wrong path is found now rather
    # than the day verification is turned back on.
    if options.ca_file is not None:
        _load_ca(context, options.ca_file, CA_FILE)
    for path in options.trusted_certificates:
        _load_ca(context, path, TRUSTED)
    if options.client_cert_file is not None and options.client_key_file is not None:
        try:
            context.load_cert_chain(options.client_cert_file, options.client_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{CLIENT_CERT}={options.client_cert_file!r} with {CLIENT_KEY}="
                f"{options.client_key_file!r}: cannot load the client certificate and key "
                f"({_why(exc)}; both PEM, the key unencrypted and matching the certificate)",
                LOCATION,
            ) from exc
    if not options.verify:
        context.check_hostname = False  # must come before CERT_NONE
        context.verify_mode = ssl.CERT_NONE
        log.warning(
            "upstream TLS certificates are NOT verified (GATEWAY_UPSTREAM_TLS_VERIFY=false or "
            "httpclient.ssl.use-insecure-trust-manager: true): any certificate is accepted from "
            "https://, wss:// and secure lb:// upstreams, so anyone on the path can impersonate "
            "them"
        )
    return context


def _load_ca(context: ssl.SSLContext, path: str, setting: str) -> None:
    try:
        context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{setting}: cannot load CA certificates from {path!r} ({_why(exc)}; expected a "
            "PEM file of one or more certificates)",
            LOCATION,
        ) from exc


def _why(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)
