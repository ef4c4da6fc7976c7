from __future__ import annotations

import ipaddress
from pathlib import Path

import jwt
from cryptography import x509

from bench.credentials import bearer_token, server_tls
from bench.run import JWT_FILTER
from bench.stack import typical_routes
from gateway.cli import main as meshgate

NOW = 1_800_000_000.0


def test_the_token_verifies_rs256_against_the_public_key_file(tmp_path: Path) -> None:
    token = bearer_token(tmp_path, NOW)
    claims = jwt.decode(
        token.token,
        token.public_key_file.read_bytes(),
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {"sub": "bench", "iat": int(NOW), "exp": int(NOW) + 86_400}
    assert jwt.get_unverified_header(token.token)["alg"] == "RS256"
    assert token.headers == {"Authorization": f"Bearer {token.token}"}


def test_the_jwt_variant_is_a_valid_route_document(tmp_path: Path) -> None:
    token = bearer_token(tmp_path, NOW)
    routes = tmp_path / "routes.yml"
    routes.write_text(typical_routes(1, 2, JWT_FILTER.format(key=token.public_key_file)))
    assert meshgate(["validate", str(routes)]) == 0
    assert "JwtAuth" in routes.read_text()


def test_the_server_certificate_names_the_loopback_address(tmp_path: Path) -> None:
    tls = server_tls(tmp_path)
    cert = x509.load_pem_x509_certificate(tls.cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert tls.key_file.stat().st_mode & 0o077 == 0
