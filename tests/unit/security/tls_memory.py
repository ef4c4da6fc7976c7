"""A TLS handshake between two real ``ssl.SSLObject``s over memory BIOs: the server and client
contexts under test meet with no socket and no event loop."""

from __future__ import annotations

import contextlib
import hashlib
import ssl
from pathlib import Path

from tests.support.certs import CertificateAuthority, Issued


def client_context(
    ca: CertificateAuthority | None = None, cert: Issued | None = None
) -> ssl.SSLContext:
    """A client trusting ``ca`` (nothing is verified without one), presenting ``cert``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(ca.cert_file)
    if cert is not None:
        context.load_cert_chain(cert.cert_file, cert.key_file)
    return context


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str = "localhost"
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run the handshake to its end: (client side, server side). Raises the ``ssl.SSLError``
    of whichever side refused (a server refusing a client certificate under TLS 1.3 does so
    after the client has finished)."""
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    near = client.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    far = server.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", near), ("server", far)):
            if done[name]:
                continue
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            # TLS 1.3 session tickets follow the server's Finished: reading consumes them.
            for side in (near, far):
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.read(1)
            return near, far
    raise AssertionError(f"handshake did not finish: {done}")


def peer_fingerprint(connection: ssl.SSLObject) -> str:
    der = connection.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def write_garbage(path: Path) -> None:
    path.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
