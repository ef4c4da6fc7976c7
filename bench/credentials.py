"""What the security candidates need, made once per run into its work directory: a server
certificate for the TLS listeners (meshgate's and nginx's, the same one) and an RS256 key pair
with a token signed by it for ``JwtAuth``.

The certificate comes from a private CA of the run's own (the test suite's maker); wrk does not
verify certificates, so nothing needs to trust it. The token is what a client of an identity
provider would carry: a ``sub`` and an ``exp`` far enough ahead for the whole run, so every
request presents the same valid token and the gateway verifies it against a configured key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.certs import CertificateAuthority
from tests.support.jwt_keys import SigningKey

TOKEN_LIFETIME_S = 86_400


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A server certificate for 127.0.0.1 and its key (PEM files)."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class BearerToken:
    """An RS256 token and the public key file that verifies it."""

    public_key_file: Path
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def server_tls(work: Path) -> TlsFiles:
    authority = CertificateAuthority(work / "tls", "meshgate bench CA")
    issued = authority.issue("127.0.0.1", dns=("localhost",), ips=("127.0.0.1",))
    return TlsFiles(issued.cert_file, issued.key_file)


def bearer_token(work: Path, now: float, lifetime_s: float = TOKEN_LIFETIME_S) -> BearerToken:
    key = SigningKey.rsa("bench")
    public = work / "jwt-public.pem"
    public.write_bytes(key.public_pem())
    public.chmod(0o644)
    token = key.sign({"sub": "bench", "iat": int(now), "exp": int(now + lifetime_s)})
    return BearerToken(public, token)
