"""JwtAuth as a route filter: its arguments (and their located errors), the RFC 6750
refusals, the request the upstream gets (claims as headers, spoofed copies removed, the
principal), and its two shapes (synchronous with a configured key, a layer with a JWKS)."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.config.args import Args, normalize_expanded, normalize_shortcut, split_shortcut
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, GatewayFilter, SyncFilter, WrappingFilter
from gateway.filters.authentication import AUTH_ORDER
from gateway.filters.catalog import builtin_filters
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.validate import validate_text
from gateway.security.jwks import JwksCaches, JwksDocument, JwksPolicy
from tests.support.certs import CertificateAuthority
from tests.support.clock import FakeClock
from tests.support.jwt_keys import Claims, SigningKey, hmac_with, jwks, unsigned
from tests.unit.filters.conftest import make_exchange

KEY = SigningKey.rsa("k1")
ISSUER = "https://idp.test/"
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def claims(clock: FakeClock) -> Claims:
    return Claims(clock.time(), issuer=ISSUER)


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "public.pem"
    path.write_bytes(KEY.public_pem())
    return str(path)


def build(args: dict[str, Any], clock: FakeClock, jwks_caches: Any = None) -> GatewayFilter:
    checked = Args(normalize_expanded(args))
    ctx = BuildContext(now=clock.time, route_id="orders", jwks=jwks_caches)
    return builtin_filters()["JwtAuth"].build(checked, ctx)


def config_error(args: dict[str, Any], clock: FakeClock) -> str:
    with pytest.raises(ConfigError) as caught:
        build(args, clock)
    return str(caught.value)


def static(key_file: str, clock: FakeClock, **extra: Any) -> SyncFilter:
    built = build(
        {"public-key-file": key_file, "issuer": ISSUER, "audiences": ["orders"], **extra}, clock
    )
    assert isinstance(built, SyncFilter)
    return built


def request(*headers: tuple[str, str]) -> Exchange:
    return make_exchange("/orders", headers=headers)


def bearer(token: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {token}")


def body(response: Response) -> dict[str, Any]:
    assert isinstance(response.body, bytes)
    decoded: dict[str, Any] = json.loads(response.body)
    return decoded


# -- refusals --------------------------------------------------------------------------------------
def test_no_token_is_a_bare_bearer_challenge(key_file: str, clock: FakeClock) -> None:
    auth = static(key_file, clock)
    for headers in ((), (("Authorization", "Basic YWxpY2U6c2VjcmV0"),)):
        response = auth.pre(request(*headers))
        assert response is not None
        assert response.status == 401
        assert response.headers.get_all("WWW-Authenticate") == ["Bearer"]
        assert response.headers.get("Content-Type") == "application/json"
        assert body(response)["message"] == "bearer token required"
        assert body(response)["status"] == 401
        assert response.committed


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda c: KEY.sign(c.make(exp=int(c.now) - 60)), "token expired"),
        (lambda c: KEY.sign(c.make(aud="billing")), "audience not accepted"),
        (lambda c: KEY.sign(c.make(iss="https://evil.test/")), "issuer not accepted"),
        (lambda c: unsigned(c.make()), "algorithm not accepted"),
        (lambda c: hmac_with(KEY.public_pem(), c.make()), "algorithm not accepted"),
        (lambda c: SigningKey.rsa("k1").sign(c.make()), "signature invalid"),
        (lambda c: "not-a-jwt", "malformed token"),
    ],
)
def test_a_bad_token_is_invalid_token(
    key_file: str, clock: FakeClock, claims: Claims, make: Any, reason: str
) -> None:
    response = static(key_file, clock).pre(request(bearer(make(claims))))
    assert response is not None
    assert response.status == 401
    assert response.headers.get("WWW-Authenticate") == (
        f'Bearer error="invalid_token", error_description="{reason}"'
    )
    assert body(response)["message"] == reason


def test_a_missing_scope_is_403(key_file: str, clock: FakeClock, claims: Claims) -> None:
    auth = static(key_file, clock, **{"required-scopes": ["orders.write", "orders.read"]})
    response = auth.pre(request(bearer(KEY.sign(claims.make()))))
    assert response is not None
    assert response.status == 403
    assert response.headers.get("WWW-Authenticate") == (
        'Bearer error="insufficient_scope", error_description="token lacks a required scope", '
        'scope="orders.write orders.read"'
    )


def test_two_authorization_fields_are_a_bad_request(
    key_file: str, clock: FakeClock, claims: Claims
) -> None:
    token = KEY.sign(claims.make())
    response = static(key_file, clock).pre(request(bearer(token), bearer(token)))
    assert response is not None
    assert response.status == 400
    assert 'error="invalid_request"' in (response.headers.get("WWW-Authenticate") or "")


# -- what passes -----------------------------------------------------------------------------------
def test_a_valid_token_writes_its_claims_and_removes_spoofed_copies(
    key_file: str, clock: FakeClock, claims: Claims
) -> None:
    auth = static(
        key_file,
        clock,
        **{"claims-to-headers": {"sub": "X-User-Id", "tenant": "X-Tenant", "absent": "X-None"}},
    )
    token = KEY.sign(claims.make(tenant="t-7"))
    exchange = request(
        bearer(token),
        ("X-User-Id", "admin"),
        ("x-user-id", "root"),
        ("X-None", "forged"),
        ("X-Other", "kept"),
    )
    assert auth.pre(exchange) is None
    headers = exchange.request.headers
    assert headers.get_all("X-User-Id") == ["alice"]
    assert headers.get_all("X-Tenant") == ["t-7"]
    assert "X-None" not in headers  # removed, and the token has no such claim
    assert headers.get("X-Other") == "kept"
    assert headers.get("Authorization") == f"Bearer {token}"  # forwarded as it came
    assert exchange.principal == "alice"


def test_the_bearer_scheme_is_case_insensitive(
    key_file: str, clock: FakeClock, claims: Claims
) -> None:
    token = KEY.sign(claims.make())
    assert static(key_file, clock).pre(request(("authorization", f"bearer  {token} "))) is None


def test_a_secret_verifies_hmac_tokens(clock: FakeClock, claims: Claims) -> None:
    auth = build({"secret": SECRET, "algorithms": "HS256", "issuer": ISSUER}, clock)
    assert isinstance(auth, SyncFilter)
    token = pyjwt.encode(claims.make(), SECRET.encode(), algorithm="HS256")
    exchange = request(bearer(token))
    assert auth.pre(exchange) is None
    assert exchange.principal == "alice"
    assert SECRET not in auth.describe()


def test_the_key_file_narrows_the_default_algorithms(key_file: str, clock: FakeClock) -> None:
    assert static(key_file, clock).describe() == (
        f"[JwtAuth publicKeyFile = '{key_file}', issuer = '{ISSUER}', audiences = "
        "list['orders'], algorithms = list['RS256'], requiredScopes = list[]]"
    )


def test_a_certificate_file_gives_its_key(tmp_path: Path, clock: FakeClock) -> None:
    ca = CertificateAuthority(tmp_path)  # its key is EC P-256
    built = build({"public-key-file": str(ca.cert_file)}, clock)
    assert isinstance(built, SyncFilter)
    assert "algorithms = list['ES256']" in built.describe()


# -- the JWKS shape --------------------------------------------------------------------------------
class Served:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.calls = 0

    async def fetch(self, uri: str) -> JwksDocument:
        self.calls += 1
        return JwksDocument(json.dumps(self.document).encode())

    async def close(self) -> None:
        return None


async def test_a_jwks_filter_is_a_layer_that_waits_only_for_unknown_keys(
    clock: FakeClock, claims: Claims
) -> None:
    served = Served(jwks(KEY))
    registry = JwksCaches(served, policy=JwksPolicy(), clock=clock)
    auth = build(
        {"jwks-uri": "https://idp.test/jwks", "claims-to-headers": {"sub": "X-User-Id"}},
        clock,
        registry,
    )
    assert isinstance(auth, WrappingFilter)
    assert auth.order == AUTH_ORDER
    seen: list[Exchange] = []

    async def upstream(exchange: Exchange) -> Response:
        seen.append(exchange)
        return Response(200)

    handler = auth.wrap(upstream)
    ok = request(bearer(KEY.sign(claims.make())), ("X-User-Id", "spoofed"))
    assert (await handler(ok)).status == 200
    assert seen[0].request.headers.get_all("X-User-Id") == ["alice"]
    stranger = SigningKey.rsa("k9").sign(claims.make())
    refused = await handler(request(bearer(stranger)))
    assert refused.status == 401
    assert body(refused)["message"] == "signing key unknown"
    assert len(seen) == 1
    assert served.calls == 1
    await registry.close()


def test_validation_builds_a_jwks_filter_without_fetching(clock: FakeClock) -> None:
    auth = build({"jwks-uri": "https://idp.test/jwks"}, clock)
    assert isinstance(auth, WrappingFilter)


async def test_validation_refuses_every_token_of_a_jwks_filter(
    clock: FakeClock, claims: Claims
) -> None:
    auth = build({"jwks-uri": "https://idp.test/jwks"}, clock)
    assert isinstance(auth, WrappingFilter)

    async def upstream(exchange: Exchange) -> Response:
        raise AssertionError("never reached")

    response = await asyncio.wait_for(
        auth.wrap(upstream)(request(bearer(KEY.sign(claims.make())))), 5
    )
    assert response.status == 401


def test_the_shortcut_form_names_the_jwks_uri_and_issuer(clock: FakeClock) -> None:
    factory = builtin_filters()["JwtAuth"]
    values = normalize_shortcut(
        split_shortcut(f"https://idp.test/jwks, {ISSUER}"),
        factory.shortcut_fields,
        factory.shortcut_type,
    )
    built = factory.build(Args(values), BuildContext(now=clock.time))
    assert f"issuer = '{ISSUER}'" in built.describe()
    assert "jwksUri = 'https://idp.test/jwks'" in built.describe()


# -- arguments -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "give exactly one of jwks-uri, public-key-file, secret (got none)"),
        (
            {"jwks-uri": "https://idp.test/jwks", "secret": SECRET},
            "give exactly one of jwks-uri, public-key-file, secret (got jwks-uri and secret)",
        ),
        ({"secret": SECRET}, "a secret needs its HMAC algorithms listed"),
        ({"secret": SECRET, "algorithms": "HS256, RS256"}, "RS256 needs an RSA key, not HMAC"),
        ({"secret": "short", "algorithms": "HS256"}, "HS256 needs a secret of at least 32 bytes"),
        ({"secret": SECRET, "algorithms": "HS512"}, "HS512 needs a secret of at least 64 bytes"),
        (
            {"jwks-uri": "https://idp.test/jwks", "algorithms": "RS256, HS256"},
            "HS256 verifies with a shared secret, never with a public key",
        ),
        ({"jwks-uri": "https://idp.test/jwks", "algorithms": "none"}, "'none' is never accepted"),
        ({"jwks-uri": "https://idp.test/jwks", "algorithms": "RS256,None"}, "never accepted"),
        ({"jwks-uri": "https://idp.test/jwks", "algorithms": "XS256"}, "unknown algorithm"),
        ({"jwks-uri": "ftp://idp.test/jwks"}, "expected an http(s) URL"),
        ({"jwks-uri": "https://idp.test/jwks", "leeway": "-1s"}, "argument 'leeway'"),
        ({"jwks-uri": "https://idp.test/jwks", "leeway": "1h"}, "between 0 and 600 seconds"),
        (
            {"jwks-uri": "https://idp.test/jwks", "required-scopes": ['a"b']},
            "is not a scope token",
        ),
        (
            {"jwks-uri": "https://idp.test/jwks", "claims-to-headers": {"sub": "Host"}},
            "a claim cannot be written to Host",
        ),
        (
            {"jwks-uri": "https://idp.test/jwks", "claims-to-headers": {"sub": "Authorization"}},
            "a claim cannot be written to Authorization",
        ),
        (
            {"jwks-uri": "https://idp.test/jwks", "claims-to-headers": {"sub": "X User"}},
            "is not a valid header name",
        ),
        (
            {
                "jwks-uri": "https://idp.test/jwks",
                "claims-to-headers": {"sub": "X-User", "email": "x-user"},
            },
            "x-user is already the header of claim 'sub'",
        ),
        ({"jwks-uri": "https://idp.test/jwks", "audience": "orders"}, "unknown argument"),
        ({"public-key-file": "/nonexistent/key.pem"}, "cannot read '/nonexistent/key.pem'"),
    ],
)
def test_bad_arguments_are_config_errors(
    args: dict[str, Any], message: str, clock: FakeClock
) -> None:
    assert message in config_error(args, clock)


def test_key_files_must_fit_the_algorithms(tmp_path: Path, clock: FakeClock, key_file: str) -> None:
    assert "public-key-file: ES256 needs an EC key, not RSA" in config_error(
        {"public-key-file": key_file, "algorithms": "RS256, ES256"}, clock
    )
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(SigningKey.ec("e", ec.SECP384R1()).public_pem())
    assert "fits none of the default RS256, ES256" in config_error(
        {"public-key-file": str(p384)}, clock
    )
    assert isinstance(
        build({"public-key-file": str(p384), "algorithms": "ES384"}, clock), SyncFilter
    )
    short = tmp_path / "short.pem"
    short.write_bytes(SigningKey.rsa("s", bits=1024).public_pem())
    assert "1024 bits is too short" in config_error({"public-key-file": str(short)}, clock)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    assert "holds no PEM public key or certificate" in config_error(
        {"public-key-file": str(garbage)}, clock
    )


def test_errors_name_the_route_and_filter(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        routes:
          - id: orders
            uri: http://127.0.0.1:9
            predicates: [Path=/orders/**]
            filters:
              - name: JwtAuth
                args:
                  jwks-uri: https://idp.test/jwks
                  algorithms: [RS256, none]
        """
    )
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "routes.yml", builtin_predicates(), builtin_filters())
    assert str(caught.value).startswith(
        "routes.yml: routes[0] (orders) filters[0] (JwtAuth): argument 'algorithms': "
        "'none' is never accepted"
    ), str(caught.value)


def test_it_runs_before_a_response_cache_listed_earlier(key_file: str) -> None:
    text = textwrap.dedent(
        f"""\
        default-filters:
          - name: JwtAuth
            args:
              public-key-file: {key_file}
              claims-to-headers.sub: X-User-Id
        routes:
          - id: orders
            uri: http://127.0.0.1:9
            predicates: [Path=/orders/**]
            filters:
              - LocalResponseCache=30s
        """
    )
    _, routes = validate_text(text, "routes.yml", builtin_predicates(), builtin_filters())
    assert [f.name for f in routes[0].filters] == ["JwtAuth", "LocalResponseCache"]
