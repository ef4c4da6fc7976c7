"""Signing keys and tokens for the JWT tests: real keys from ``cryptography``, real tokens from
PyJWT, JWKs as an identity provider publishes them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class SigningKey:
    kid: str
    private: PrivateKey
    alg: str

    @classmethod
    def rsa(cls, kid: str, bits: int = 2048, alg: str = "RS256") -> SigningKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=bits), alg)

    @classmethod
    def ec(cls, kid: str, curve: ec.EllipticCurve | None = None, alg: str = "ES256") -> SigningKey:
        return cls(kid, ec.generate_private_key(curve or ec.SECP256R1()), alg)

    def jwk(self, **extra: Any) -> dict[str, Any]:
        """The public JWK, with ``kid`` (and ``use: sig``)."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "use": "sig", **extra}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = "", alg: str = "") -> str:
        """A token signed by this key; ``kid`` "" means this key's own, None leaves it out."""
        headers: dict[str, Any] = {}
        chosen = self.kid if kid == "" else kid
        if chosen is not None:
            headers["kid"] = chosen
        return jwt.encode(claims, self.private, algorithm=alg or self.alg, headers=headers)


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned(claims: dict[str, Any], kid: str | None = None) -> str:
    """``alg: none``: header and claims, an empty signature."""
    header: dict[str, Any] = {"alg": "none", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def hmac_with(secret: bytes, claims: dict[str, Any], kid: str | None = None) -> str:
    """HS256 signed with ``secret``, written by hand: PyJWT refuses a PEM public key as an
    HMAC secret, which is exactly the forgery the gateway must refuse too."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    digest = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


def tampered(token: str) -> str:
    """The same header and signature over other claims: the signature no longer matches."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "mallory"
    return f"{head}.{_b64(json.dumps(claims).encode())}.{signature}"


@dataclass
class Claims:
    """Claims for a test token around wall-clock ``now``."""

    now: float
    issuer: str = "https://idp.test/"
    audience: str | list[str] = "orders"
    extra: dict[str, Any] = field(default_factory=dict)

    def make(self, *, ttl: float = 300.0, **overrides: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "alice",
            "iat": int(self.now),
            "exp": int(self.now + ttl),
            "scope": "orders.read profile",
            **self.extra,
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims
