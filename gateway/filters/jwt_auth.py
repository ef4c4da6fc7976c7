"""JwtAuth: a request passes with a valid JWT bearer token; its ``sub`` is the principal.

    filters:
      - JwtAuth=https://idp.example.com/.well-known/jwks.json, https://idp.example.com/
      - name: JwtAuth
        args:
          jwks-uri: https://idp.example.com/.well-known/jwks.json   # or public-key-file: PATH,
                                                                    # or secret: TEXT (HS* only)
          issuer: https://idp.example.com/           # the iss a token must carry
          audiences: [orders-api]                    # aud must name one of these
          algorithms: [RS256, ES256]                 # the default; never none
          leeway: 30s                                # clock skew allowed on exp/nbf/iat
          required-scopes: [orders.read]             # all of them, in scope (or scp)
          claims-to-headers:
            sub: X-User-Id                           # written into the upstream request

The token comes from ``Authorization: Bearer <token>`` (forwarded upstream as it came, as a
resource server behind may check it again). Refusals follow RFC 6750: no token, 401 with a
bare ``WWW-Authenticate: Bearer``; a bad token, 401 ``error="invalid_token"``; a token lacking
a required scope, 403 ``error="insufficient_scope"``; two Authorization fields, 400
``error="invalid_request"``; each with the JSON error body and a short reason. Every header
``claims-to-headers`` names is removed from the request before the claims are written, so a
client cannot send one of its own. Like every authentication filter it runs before the
route's other filters (``filters.authentication``).

The verification rules are ``gateway.security.jwt``'s, the JWKS cache ``gateway.security.jwks``'s.
With a configured key (``public-key-file``, ``secret``) the filter never waits: it is a
synchronous filter. With a JWKS it waits only when a token names a key not fetched yet.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.config.args import Args
from gateway.exchange import Exchange, Handler, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter, WrappingFilter
from gateway.filters.authentication import AUTH_ORDER, refusal
from gateway.filters.describe import filter_text
from gateway.filters.header_args import check_header_name
from gateway.security.jwt import (
    ALGORITHMS,
    DEFAULT_ALGORITHMS,
    EC,
    HMAC,
    INSUFFICIENT_SCOPE,
    INVALID_REQUEST,
    OKP,
    RSA,
    HmacSecret,
    JwtPolicy,
    JwtVerifier,
    KeySource,
    StaticKey,
    TokenRejected,
    Verified,
    VerifyKey,
    family_of,
    parse_algorithms,
    unfit_reason,
)

NAME = "JwtAuth"
SOURCES = ("jwks-uri", "public-key-file", "secret")
MAX_LEEWAY = 600.0
# Fields a claim must never be written into: framing, routing and the credentials themselves.
_RESERVED = frozenset(
    {
        "authorization",
        "connection",
        "content-length",
        "expect",
        "host",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_AUTHORIZATION = b"authorization"

log = logging.getLogger("meshgate.jwt")


class _NotFetched:
    """The key source of a JWKS filter while a file is only validated: never fetched."""

    generation = 0

    def keys_for(self, kid: str | None, alg: str) -> Sequence[VerifyKey] | None:
        return None

    async def refresh(self, kid: str | None) -> None:
        return None


class _Gate:
    """One filter's work but the verification: the token from the request, the request
    changed for the upstream, the refusals."""

    __slots__ = ("_now", "_scope", "_strip", "verifier")

    def __init__(
        self,
        verifier: JwtVerifier,
        strip: frozenset[bytes],
        now: Callable[[], float],
    ) -> None:
        self.verifier = verifier
        self._strip = strip
        self._now = now
        self._scope = " ".join(verifier.policy.required_scopes)

    @staticmethod
    def token(exchange: Exchange) -> str:
        found: bytes | None = None
        for name, value in exchange.request.headers.raw:
            if len(name) == 13 and name.lower() == _AUTHORIZATION:
                if found is not None:
                    raise TokenRejected("more than one Authorization header", INVALID_REQUEST)
                found = value
        if found is None:
            raise TokenRejected("bearer token required", None)
        scheme, _, rest = found.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            raise TokenRejected("bearer token required", None)  # another scheme: no token
        token = rest.strip()
        if not token:
            raise TokenRejected("malformed token")
        return token.decode("latin-1")

    def admit(self, exchange: Exchange, verified: Verified) -> None:
        raw = exchange.request.headers.raw
        strip = self._strip
        if strip:
            # The client's own copies go first, whatever the token carries.
            raw[:] = [item for item in raw if item[0].lower() not in strip]
        raw.extend(verified.headers)
        exchange.principal = verified.subject

    def refuse(self, exchange: Exchange, rejected: TokenRejected) -> Response:
        log.debug(
            "%s %s: bearer token refused: %s",
            exchange.request.method,
            exchange.request.path,
            rejected.reason,
        )
        if rejected.error is None:
            challenge = "Bearer"  # RFC 6750 3.1: no error code when no token was sent
        else:
            challenge = f'Bearer error="{rejected.error}", error_description="{rejected.reason}"'
            if rejected.error == INSUFFICIENT_SCOPE and self._scope:
                challenge += f', scope="{self._scope}"'
        return refusal(
            exchange, rejected.status, rejected.reason, challenge.encode("latin-1"), self._now
        )


class StaticJwtAuth(SyncFilter):
    """A configured key: every verdict is at hand, so no layer of its own."""

    name = NAME
    order = AUTH_ORDER

    def __init__(self, gate: _Gate, text: str) -> None:
        self._gate = gate
        self._text = text

    def pre(self, exchange: Exchange) -> Response | None:
        gate = self._gate
        try:
            verified = gate.verifier.check(gate.token(exchange))
            if verified is None:  # a static key knows every kid: never, but be sure
                raise TokenRejected("signing key unknown")
        except TokenRejected as rejected:
            return gate.refuse(exchange, rejected)
        gate.admit(exchange, verified)
        return None

    def describe(self) -> str:
        return self._text


class JwtAuth(WrappingFilter):
    """Keys from a JWKS: synchronous while the token's key is cached, waiting for the JWKS
    otherwise."""

    name = NAME
    order = AUTH_ORDER

    def __init__(self, gate: _Gate, text: str) -> None:
        self._gate = gate
        self._text = text

    def wrap(self, inner: Handler) -> Handler:
        gate = self._gate
        verifier = gate.verifier
        token_of = gate.token

        async def jwt_auth(exchange: Exchange) -> Response:
            try:
                token = token_of(exchange)
                verified = verifier.check(token)
                if verified is None:
                    verified = await verifier.verify(token)
            except TokenRejected as rejected:
                return gate.refuse(exchange, rejected)
            gate.admit(exchange, verified)
            return await inner(exchange)

        return jwt_auth

    def describe(self) -> str:
        return self._text


# -- arguments ---------------------------------------------------------------------------------
def _jwks_uri(args: Args) -> str:
    uri: str = args.str("jwks-uri")
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        args.fail("jwks-uri", f"expected an http(s) URL, got {uri!r}")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        # Keys over plain HTTP can be swapped by anyone on the path: allowed (a provider
        # inside the mesh), but said.
        log.warning("JwtAuth jwks-uri %s is plain HTTP: its keys are not protected", uri)
    return uri


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_PUBLIC_KEYS = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)
# The first algorithm of each key family: what a key too weak for its family is checked on.
_FIRST_OF = {RSA: "RS256", EC: "ES256", OKP: "EdDSA"}


def _public_key_file(args: Args) -> VerifyKey:
    path: str = args.str("public-key-file")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        args.fail("public-key-file", f"cannot read {path!r}: {exc.strerror or exc}")
    key: object
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            key = x509.load_pem_x509_certificate(data).public_key()
        except (ValueError, UnsupportedAlgorithm):
            args.fail("public-key-file", f"{path!r} holds no PEM public key or certificate")
    if not isinstance(key, _PUBLIC_KEYS):
        args.fail("public-key-file", f"{path!r}: a {type(key).__name__} cannot verify JWTs")
    fitting = [alg for alg, family in ALGORITHMS.items() if unfit_reason(key, alg) is None]
    if not fitting:
        reason = unfit_reason(key, _FIRST_OF[family_of(key)])
        args.fail("public-key-file", f"{path!r}: {reason}")
    return key


def _algorithms(args: Args) -> tuple[str, ...] | None:
    """The configured list, or None when the argument is absent (the default applies)."""
    if not args.has("algorithms"):
        args.raw("algorithms", None)
        return None
    names: list[str] = args.str_list("algorithms")
    try:
        return parse_algorithms(names)
    except ValueError as exc:
        args.fail("algorithms", str(exc))


def _key_source(
    args: Args, ctx: BuildContext, given: tuple[str, ...] | None
) -> tuple[KeySource, tuple[str, ...], tuple[str, object]]:
    """The key source, the algorithms it verifies, and how ``describe`` names it."""
    sources = [name for name in SOURCES if args.has(name)]
    if len(sources) != 1:
        named = " and ".join(sources) if sources else "none"
        where = sources[1] if len(sources) > 1 else SOURCES[0]
        args.fail(where, f"give exactly one of {', '.join(SOURCES)} (got {named})")
    source = sources[0]
    if source == "secret":
        secret: str = args.str("secret")
        if given is None:
            args.fail("algorithms", "a secret needs its HMAC algorithms listed (HS256...)")
        key = HmacSecret(secret.encode("utf-8"))
        for alg in given:
            reason = unfit_reason(key, alg)
            if reason is not None:
                args.fail("algorithms" if ALGORITHMS[alg] != HMAC else "secret", reason)
        return StaticKey(key), given, ("secret", "******")
    hmac = [alg for alg in given or () if ALGORITHMS[alg] == HMAC]
    if hmac:
        args.fail(
            "algorithms",
            f"{hmac[0]} verifies with a shared secret, never with a public key "
            "(that is the RS256/HS256 confusion); HMAC algorithms need secret",
        )
    if source == "public-key-file":
        public = _public_key_file(args)
        if given is None:
            fitting = tuple(a for a in DEFAULT_ALGORITHMS if unfit_reason(public, a) is None)
            if not fitting:
                args.fail(
                    "algorithms",
                    f"the key fits none of the default {', '.join(DEFAULT_ALGORITHMS)}: "
                    "list the algorithms it signs with",
                )
            algorithms = fitting
        else:
            for alg in given:
                reason = unfit_reason(public, alg)
                if reason is not None:
                    args.fail("algorithms", f"public-key-file: {reason}")
            algorithms = given
        return StaticKey(public), algorithms, ("publicKeyFile", args.str("public-key-file"))
    uri = _jwks_uri(args)
    keys: KeySource = ctx.jwks.cache(uri) if ctx.jwks is not None else _NotFetched()
    return keys, given or DEFAULT_ALGORITHMS, ("jwksUri", uri)


def _flatten(node: Mapping[Any, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Claim names with dots were folded into nested mappings by the argument reader
    (``a.b: X``): unfolded again here."""
    out: list[tuple[str, Any]] = []
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(_flatten(value, name + "."))
        else:
            out.append((name, value))
    return out


def _claims_to_headers(args: Args) -> tuple[tuple[str, str], ...]:
    given = args.mapping("claims-to-headers", {})
    pairs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for claim_name, header in _flatten(given):
        if not isinstance(header, str) or not header:
            args.fail("claims-to-headers", f"{claim_name}: expected a header name, got {header!r}")
        check_header_name(args, f"claims-to-headers.{claim_name}", header)
        lower = header.lower()
        if lower in _RESERVED:
            args.fail(f"claims-to-headers.{claim_name}", f"a claim cannot be written to {header}")
        if lower in seen:
            args.fail(
                f"claims-to-headers.{claim_name}",
                f"{header} is already the header of claim {seen[lower]!r}",
            )
        seen[lower] = claim_name
        pairs.append((claim_name, header))
    return tuple(pairs)


def _scopes(args: Args) -> tuple[str, ...]:
    scopes: list[str] = args.str_list("required-scopes", [])
    for scope in scopes:
        # RFC 6749 3.3 scope-token: it is also written into the challenge's quoted string.
        if any(c in ' "\\' or not 0x21 <= ord(c) <= 0x7E for c in scope):
            args.fail("required-scopes", f"{scope!r} is not a scope token")
    return tuple(dict.fromkeys(scopes))


def _leeway(args: Args) -> float:
    leeway: float = args.duration("leeway", 30.0, default_unit="s")
    if not 0.0 <= leeway <= MAX_LEEWAY:
        args.fail("leeway", f"must be between 0 and {MAX_LEEWAY:g} seconds, got {leeway:g}")
    return leeway


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    given = _algorithms(args)
    keys, algorithms, source = _key_source(args, ctx, given)
    issuer: str | None = args.str("issuer", None)
    audiences: list[str] = args.str_list("audiences", [])
    policy = JwtPolicy(
        algorithms=algorithms,
        issuer=issuer,
        audiences=frozenset(audiences),
        leeway=_leeway(args),
        required_scopes=_scopes(args),
        claim_headers=_claims_to_headers(args),
    )
    args.finish()
    verifier = JwtVerifier(policy, keys, ctx.now)
    strip = frozenset(header.lower().encode("latin-1") for _, header in policy.claim_headers)
    gate = _Gate(verifier, strip, ctx.now)
    text = filter_text(
        NAME,
        source,
        ("issuer", issuer),
        ("audiences", sorted(audiences)),
        ("algorithms", list(algorithms)),
        ("requiredScopes", list(policy.required_scopes)),
    )
    if isinstance(keys, StaticKey):
        return StaticJwtAuth(gate, text)
    return JwtAuth(gate, text)


FACTORIES: tuple[FilterFactory, ...] = (FilterFactory(NAME, ("jwks-uri", "issuer"), _build),)

__all__ = ["FACTORIES", "JwtAuth", "StaticJwtAuth"]
