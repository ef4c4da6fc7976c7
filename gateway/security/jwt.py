"""JWT bearer-token verification: which algorithms a key may verify, the claims checks, and a
bounded cache of tokens already verified.

The rules that keep the classic JWT mistakes out:
- the accepted algorithms are a fixed list from configuration; ``none`` is never among them,
  and a token's ``alg`` outside the list is refused before any key is looked at;
- a key verifies only algorithms of its own family (an RSA key RS*/PS*, an EC key ES* on the
  curve the algorithm names, an Ed25519/Ed448 key EdDSA, an HMAC secret HS*). An HMAC secret
  exists only when configured as one, so a public key can never be used as an HMAC secret
  (the RS256 -> HS256 confusion);
- keys are key objects, never text PyJWT would have to guess the type of; keys named by the
  token (``jku``, ``x5u``, an embedded ``jwk``) are never fetched or used;
- the time claims are checked here against an injected clock (``exp`` required).

Signature checks cost tens of microseconds; a token is verified once and then served from
``JwtVerifier``'s cache until its ``exp`` (or until the key set changes).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt import PyJWS
from jwt.exceptions import InvalidSignatureError, PyJWTError

# -- algorithms and key families -------------------------------------------------------------
RSA, EC, OKP, HMAC = "RSA", "EC", "OKP", "HMAC"
ALGORITHMS: Mapping[str, str] = {
    "RS256": RSA,
    "RS384": RSA,
    "RS512": RSA,
    "PS256": RSA,
    "PS384": RSA,
    "PS512": RSA,
    "ES256": EC,
    "ES384": EC,
    "ES512": EC,
    "EdDSA": OKP,
    "HS256": HMAC,
    "HS384": HMAC,
    "HS512": HMAC,
}
DEFAULT_ALGORITHMS = ("RS256", "ES256")
# RFC 7518 3.4: each ES algorithm names its curve.
_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
# RFC 7518 3.2: an HMAC key at least as long as the hash output; 3.3: RSA keys of 2048 bits.
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
RSA_MIN_BITS = 2048
# Candidate keys tried for one token that names no ``kid``: bounds the work a token can cause.
MAX_CANDIDATES = 4
# Claim values longer than this are not written into a request header.
MAX_HEADER_VALUE = 4096
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # all but HTAB: would split the head


@dataclass(frozen=True, slots=True)
class HmacSecret:
    """An HMAC key: only ever made from a configured ``secret``."""

    value: bytes

    def __repr__(self) -> str:  # never in a log or a traceback
        return "HmacSecret(***)"


VerifyKey = (
    rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
    | HmacSecret
)


def family_of(key: VerifyKey) -> str:
    if isinstance(key, HmacSecret):
        return HMAC
    if isinstance(key, rsa.RSAPublicKey):
        return RSA
    if isinstance(key, ec.EllipticCurvePublicKey):
        return EC
    return OKP


def unfit_reason(key: VerifyKey, alg: str) -> str | None:
    """Why ``key`` must not verify ``alg``, or None when it may."""
    family = family_of(key)
    wanted = ALGORITHMS.get(alg)
    if wanted is None:
        return f"{alg} is not an accepted algorithm"
    if family != wanted:
        return f"{alg} needs an {wanted} key, not {family}"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name != _CURVES[alg]:
        return f"{alg} needs a key on {_CURVES[alg]}, not {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < RSA_MIN_BITS:
        return f"an RSA key of {key.key_size} bits is too short (at least {RSA_MIN_BITS})"
    if isinstance(key, HmacSecret) and len(key.value) < HMAC_MIN_BYTES[alg]:
        return f"{alg} needs a secret of at least {HMAC_MIN_BYTES[alg]} bytes"
    return None


def parse_algorithms(names: Sequence[str]) -> tuple[str, ...]:
    """The accepted algorithms as configured; raises ValueError naming the bad one."""
    by_upper = {name.upper(): name for name in ALGORITHMS}
    out: list[str] = []
    for written in names:
        name = written.strip()
        if name.lower() == "none":
            raise ValueError("'none' is never accepted: an unsigned token proves nothing")
        known = by_upper.get(name.upper())
        if known is None:
            raise ValueError(f"unknown algorithm {name!r}; use some of {', '.join(ALGORITHMS)}")
        if known not in out:
            out.append(known)
    if not out:
        raise ValueError("must name at least one algorithm")
    return tuple(out)


# -- refusals ----------------------------------------------------------------------------------
INVALID_TOKEN = "invalid_token"
INVALID_REQUEST = "invalid_request"
INSUFFICIENT_SCOPE = "insufficient_scope"


class TokenRejected(Exception):
    """A request's bearer token is refused. ``error`` is RFC 6750's code (None: no token was
    sent at all, which RFC 6750 answers with a bare challenge); ``reason`` is short and safe
    to show the client."""

    def __init__(self, reason: str, error: str | None = INVALID_TOKEN) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error

    @property
    def status(self) -> int:
        if self.error == INSUFFICIENT_SCOPE:
            return 403
        if self.error == INVALID_REQUEST:
            return 400
        return 401


# -- policy ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JwtPolicy:
    """What a token must satisfy beyond its signature. ``claim_headers``: (claim, header
    name) pairs written into the request for a token that passes."""

    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    issuer: str | None = None
    audiences: frozenset[str] = frozenset()
    leeway: float = 30.0
    required_scopes: tuple[str, ...] = ()
    claim_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Verified:
    """A token that passed: what the request gets, and how long the verdict holds."""

    subject: str | None
    headers: tuple[tuple[bytes, bytes], ...]
    valid_until: float  # exp + leeway
    missing_scopes: tuple[str, ...]
    generation: int  # the key set's, when verified


class KeySource(Protocol):
    """Where verification keys come from: one configured key, or a JWKS document."""

    @property
    def generation(self) -> int:
        """Changes whenever the set of keys does: verdicts cached under another generation
        are verified again (a key removed from a JWKS stops being honoured)."""
        ...

    def keys_for(self, kid: str | None, alg: str) -> Sequence[VerifyKey] | None:
        """The known keys that may verify a token with this ``kid`` and ``alg`` (possibly
        none); None when ``kid`` is unknown here, so that ``refresh`` might find it."""
        ...

    async def refresh(self, kid: str | None) -> None:
        """Look again for an unknown ``kid``, when the source allows it now (rate-limited;
        concurrent callers share one look)."""
        ...


class StaticKey:
    """``KeySource`` for a key from configuration (a public-key file or a secret)."""

    generation = 0

    def __init__(self, key: VerifyKey) -> None:
        self.key = key

    def keys_for(self, kid: str | None, alg: str) -> Sequence[VerifyKey] | None:
        return (self.key,) if unfit_reason(self.key, alg) is None else ()

    async def refresh(self, kid: str | None) -> None:
        return None


# -- the token ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TokenHeader:
    alg: str
    kid: str | None


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def read_header(token: str, accepted: Sequence[str]) -> TokenHeader:
    """The unverified JOSE header, refused unless its ``alg`` is one of ``accepted``."""
    if not _TOKEN.fullmatch(token) or token.count(".") != 2:
        raise TokenRejected("malformed token")
    try:
        header = json.loads(_b64decode(token.partition(".")[0]))
    except (ValueError, binascii.Error, RecursionError):
        raise TokenRejected("malformed token") from None
    if not isinstance(header, dict):
        raise TokenRejected("malformed token")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in accepted:
        raise TokenRejected("algorithm not accepted")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenRejected("malformed token")
    return TokenHeader(alg, kid)


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenRejected("malformed claims")
    return float(value)


def _granted_scopes(claims: Mapping[str, Any]) -> set[str]:
    """OAuth's space-separated ``scope``, or the ``scp`` list some servers issue."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return set(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, str):
        return set(scp.split())
    if isinstance(scp, list):
        return {item for item in scp if isinstance(item, str)}
    return set()


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by name; a dotted name not present as such walks nested objects
    (``realm_access.roles``)."""
    if name in claims:
        return claims[name]
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def header_value(value: Any) -> bytes | None:
    """A claim as a header value: text as it is, lists joined with commas, objects as JSON.
    None (the header is not written) for a missing claim, or one a header cannot carry safely
    (a control character would split the request head)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    elif isinstance(value, list) and all(
        isinstance(item, str | int | float) and not isinstance(item, bool) for item in value
    ):
        text = ",".join(str(item) for item in value)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    data = text.strip().encode("utf-8")
    if len(data) > MAX_HEADER_VALUE or _CONTROL.search(data):
        return None
    return data


def check_claims(
    claims: Mapping[str, Any], policy: JwtPolicy, now: float, generation: int = 0
) -> Verified:
    """The registered claims against ``policy`` at wall-clock ``now``; raises TokenRejected."""
    leeway = policy.leeway
    exp = _number(claims, "exp")
    if exp is None:
        raise TokenRejected("token has no expiry")
    if now >= exp + leeway:
        raise TokenRejected("token expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and now < nbf - leeway:
        raise TokenRejected("token not yet valid")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise TokenRejected("token issued in the future")
    if policy.issuer is not None and claims.get("iss") != policy.issuer:
        raise TokenRejected("issuer not accepted")
    if policy.audiences:
        aud = claims.get("aud")
        given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in policy.audiences for a in given):
            raise TokenRejected("audience not accepted")
    sub = claims.get("sub")
    if sub is not None and not isinstance(sub, str):
        raise TokenRejected("malformed claims")
    granted = _granted_scopes(claims) if policy.required_scopes else set()
    missing = tuple(s for s in policy.required_scopes if s not in granted)
    headers: list[tuple[bytes, bytes]] = []
    for name, header in policy.claim_headers:
        value = header_value(claim(claims, name))
        if value is not None:
            headers.append((header.encode("latin-1"), value))
    return Verified(
        subject=sub,
        headers=tuple(headers),
        valid_until=exp + leeway,
        missing_scopes=missing,
        generation=generation,
    )


class JwtVerifier:
    """Verifies bearer tokens for one filter: its policy, its key source, its clock, and a
    bounded cache of tokens already verified (until their ``exp``, under the same keys).

    ``check`` is synchronous and answers whenever the keys are at hand; it returns None only
    when the token names a key the source does not know yet, and then ``verify`` (which may
    wait for the source's refresh) gives the answer."""

    __slots__ = ("_cache", "_cache_size", "_jws", "_keys", "_now", "policy")

    def __init__(
        self,
        policy: JwtPolicy,
        keys: KeySource,
        now: Callable[[], float],
        *,
        cache_size: int = 4096,
    ) -> None:
        self.policy = policy
        self._keys = keys
        self._now = now
        self._cache: dict[str, Verified] = {}
        self._cache_size = cache_size
        # Verification only ever runs the configured algorithms; a key shorter than the
        # minimum is an error rather than PyJWT's warning.
        self._jws = PyJWS(
            algorithms=list(policy.algorithms),
            options={"verify_signature": True, "enforce_minimum_key_length": True},
        )

    def check(self, token: str) -> Verified | None:
        """The verdict on ``token``, or None when its key must be looked for first."""
        now = self._now()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.generation == self._keys.generation:
                if now < cached.valid_until:
                    return _scoped(cached)
                del self._cache[token]
                raise TokenRejected("token expired")
            del self._cache[token]  # verified under keys since replaced: decide afresh
        header = read_header(token, self.policy.algorithms)
        keys = self._keys.keys_for(header.kid, header.alg)
        if keys is None:
            return None
        return self._verify(token, header, keys, now)

    async def verify(self, token: str) -> Verified:
        """As ``check``, waiting for the key source to look for an unknown ``kid``."""
        found = self.check(token)
        if found is not None:
            return found
        header = read_header(token, self.policy.algorithms)
        await self._keys.refresh(header.kid)
        keys = self._keys.keys_for(header.kid, header.alg)
        if keys is None:
            raise TokenRejected("signing key unknown")
        return self._verify(token, header, keys, self._now())

    def _verify(
        self, token: str, header: TokenHeader, keys: Sequence[VerifyKey], now: float
    ) -> Verified:
        if not keys:
            raise TokenRejected("no key for this algorithm")
        generation = self._keys.generation
        payload: bytes | None = None
        for key in keys[:MAX_CANDIDATES]:
            if unfit_reason(key, header.alg) is not None:
                continue  # never let a key verify another family's algorithm
            material = key.value if isinstance(key, HmacSecret) else key
            try:
                decoded = self._jws.decode_complete(token, material, algorithms=[header.alg])
            except InvalidSignatureError:
                continue
            except PyJWTError:
                raise TokenRejected("malformed token") from None
            payload = decoded["payload"]
            break
        if payload is None:
            raise TokenRejected("signature invalid")
        try:
            claims = json.loads(payload)
        except (ValueError, RecursionError):
            raise TokenRejected("malformed claims") from None
        if not isinstance(claims, dict):
            raise TokenRejected("malformed claims")
        verified = check_claims(claims, self.policy, now, generation)
        cache = self._cache
        if len(cache) >= self._cache_size:
            del cache[next(iter(cache))]  # the oldest verdict makes room
        cache[token] = verified
        return _scoped(verified)


def _scoped(verified: Verified) -> Verified:
    if verified.missing_scopes:
        raise TokenRejected("token lacks a required scope", INSUFFICIENT_SCOPE)
    return verified
