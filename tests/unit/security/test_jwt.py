"""JWT verification (gateway.security.jwt) with real keys, real tokens and a fake clock: the
claims checks, the algorithm and key-family rules, scopes, claims as headers, and the cache
of verified tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.security.jwt import (
    INSUFFICIENT_SCOPE,
    INVALID_TOKEN,
    HmacSecret,
    JwtPolicy,
    JwtVerifier,
    StaticKey,
    TokenRejected,
    VerifyKey,
    header_value,
    parse_algorithms,
    unfit_reason,
)
from tests.support.clock import FakeClock
from tests.support.jwt_keys import Claims, SigningKey, hmac_with, tampered, unsigned

RSA_KEY = SigningKey.rsa("rsa-1")
EC_KEY = SigningKey.ec("ec-1")
OTHER_RSA = SigningKey.rsa("rsa-1")  # same kid, another key: a forger's
SECRET = b"s" * 32
ISSUER = "https://idp.test/"


class Keys:
    """A ``KeySource`` by kid, counting lookups; ``later`` is what a refresh finds."""

    def __init__(
        self, keys: dict[str, VerifyKey], later: dict[str, VerifyKey] | None = None
    ) -> None:
        self.keys = dict(keys)
        self.later = later or {}
        self.generation = 0
        self.lookups = 0
        self.refreshes = 0

    def keys_for(self, kid: str | None, alg: str) -> Sequence[VerifyKey] | None:
        self.lookups += 1
        if kid is None:
            return [k for k in self.keys.values() if unfit_reason(k, alg) is None]
        key = self.keys.get(kid)
        if key is None:
            return None
        return [key] if unfit_reason(key, alg) is None else []

    async def refresh(self, kid: str | None) -> None:
        self.refreshes += 1
        self.keys.update(self.later)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def claims(clock: FakeClock) -> Claims:
    return Claims(clock.time(), issuer=ISSUER)


def verifier(
    clock: FakeClock, keys: Any = None, *, cache_size: int = 4096, **policy: Any
) -> JwtVerifier:
    policy.setdefault("issuer", ISSUER)
    policy.setdefault("audiences", frozenset({"orders"}))
    source = keys if keys is not None else StaticKey(RSA_KEY.private.public_key())
    return JwtVerifier(JwtPolicy(**policy), source, clock.time, cache_size=cache_size)


def rejected(check: JwtVerifier, token: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        check.check(token)
    return info.value


# -- what passes ---------------------------------------------------------------------------------
def test_a_valid_rs256_token_passes_with_its_subject(clock: FakeClock, claims: Claims) -> None:
    verified = verifier(clock).check(RSA_KEY.sign(claims.make()))
    assert verified is not None
    assert verified.subject == "alice"
    assert verified.missing_scopes == ()


def test_es256_and_hs256_verify_with_their_own_key_family(clock: FakeClock, claims: Claims) -> None:
    ec_check = verifier(clock, StaticKey(EC_KEY.private.public_key()))
    assert ec_check.check(EC_KEY.sign(claims.make())) is not None
    hs_check = verifier(clock, StaticKey(HmacSecret(SECRET)), algorithms=("HS256",))
    token = pyjwt.encode(claims.make(), SECRET, algorithm="HS256")
    assert hs_check.check(token) is not None


# -- time ------------------------------------------------------------------------------------------
def test_expiry_is_checked_against_the_injected_clock_with_leeway(
    clock: FakeClock, claims: Claims
) -> None:
    now = clock.time()
    check = verifier(clock, leeway=30.0)
    assert check.check(RSA_KEY.sign(claims.make(exp=int(now) - 29))) is not None
    assert rejected(check, RSA_KEY.sign(claims.make(exp=int(now) - 30))).reason == "token expired"
    token = RSA_KEY.sign(claims.make(ttl=60))
    assert check.check(token) is not None
    clock.advance(89)
    assert check.check(token) is not None
    clock.advance(1)
    expired = rejected(check, token)
    assert (expired.reason, expired.status, expired.error) == ("token expired", 401, INVALID_TOKEN)


def test_a_token_without_exp_is_refused(clock: FakeClock, claims: Claims) -> None:
    assert rejected(verifier(clock), RSA_KEY.sign(claims.make(exp=None))).reason == (
        "token has no expiry"
    )


def test_nbf_and_iat_in_the_future_are_refused_beyond_the_leeway(
    clock: FakeClock, claims: Claims
) -> None:
    now = int(clock.time())
    check = verifier(clock, leeway=30.0)
    assert check.check(RSA_KEY.sign(claims.make(nbf=now + 20))) is not None
    assert rejected(check, RSA_KEY.sign(claims.make(nbf=now + 40))).reason == (
        "token not yet valid"
    )
    assert rejected(check, RSA_KEY.sign(claims.make(iat=now + 40))).reason == (
        "token issued in the future"
    )
    assert rejected(check, RSA_KEY.sign(claims.make(exp="soon"))).reason == "malformed claims"


# -- issuer and audience -----------------------------------------------------------------------
def test_issuer_must_match_exactly(clock: FakeClock, claims: Claims) -> None:
    check = verifier(clock)
    for iss in ("https://evil.test/", "https://idp.test", None):
        assert rejected(check, RSA_KEY.sign(claims.make(iss=iss))).reason == "issuer not accepted"
    anyone = verifier(clock, issuer=None)
    assert anyone.check(RSA_KEY.sign(claims.make(iss="https://other.test/"))) is not None


def test_audience_must_name_one_of_the_audiences(clock: FakeClock, claims: Claims) -> None:
    check = verifier(clock, audiences=frozenset({"orders", "billing"}))
    assert check.check(RSA_KEY.sign(claims.make(aud=["web", "billing"]))) is not None
    for aud in ("web", ["web", "mobile"], None, 7):
        assert rejected(check, RSA_KEY.sign(claims.make(aud=aud))).reason == (
            "audience not accepted"
        )
    unchecked = verifier(clock, audiences=frozenset())
    assert unchecked.check(RSA_KEY.sign(claims.make(aud="anything"))) is not None


# -- signatures, algorithms, key families -------------------------------------------------------
def test_a_bad_signature_is_refused(clock: FakeClock, claims: Claims) -> None:
    check = verifier(clock)
    token = RSA_KEY.sign(claims.make())
    assert rejected(check, tampered(token)).reason == "signature invalid"
    assert rejected(check, OTHER_RSA.sign(claims.make())).reason == "signature invalid"


def test_alg_none_is_refused(clock: FakeClock, claims: Claims) -> None:
    assert rejected(verifier(clock), unsigned(claims.make())).reason == "algorithm not accepted"


def test_hs256_signed_with_the_rsa_public_key_is_refused(clock: FakeClock, claims: Claims) -> None:
    """The RS256 -> HS256 confusion: the public key's PEM bytes used as an HMAC secret."""
    forged = hmac_with(RSA_KEY.public_pem(), claims.make(sub="mallory"), kid="rsa-1")
    assert rejected(verifier(clock), forged).reason == "algorithm not accepted"
    # Even a policy that accepted HS256 would not let an RSA key verify it: the family rule.
    keys = Keys({"rsa-1": RSA_KEY.private.public_key()})
    lax = verifier(clock, keys, algorithms=("RS256", "HS256"))
    assert rejected(lax, forged).reason == "no key for this algorithm"


def test_a_key_verifies_only_its_own_family_and_curve(clock: FakeClock, claims: Claims) -> None:
    p384 = SigningKey.ec("ec-384", ec.SECP384R1(), alg="ES384")
    keys = Keys({"rsa-1": RSA_KEY.private.public_key(), "ec-384": p384.private.public_key()})
    check = verifier(clock, keys, algorithms=("RS256", "ES256", "ES384"))
    # ES256 tokens whose kid names the RSA key, and the P-384 key.
    for kid in ("rsa-1", "ec-384"):
        assert rejected(check, EC_KEY.sign(claims.make(), kid=kid)).reason == (
            "no key for this algorithm"
        )
    assert check.check(p384.sign(claims.make())) is not None


def test_keys_a_token_names_itself_are_never_used(clock: FakeClock, claims: Claims) -> None:
    """``jku`` and an embedded ``jwk`` point at the forger's own key: ignored."""
    forger = SigningKey.rsa("rsa-1")
    token = pyjwt.encode(
        claims.make(sub="mallory"),
        forger.private,
        algorithm="RS256",
        headers={"kid": "rsa-1", "jku": "https://evil.test/jwks", "jwk": forger.jwk()},
    )
    assert rejected(verifier(clock), token).reason == "signature invalid"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "e30.e30.",  # {} as header: no alg
        "WzFd.e30.c2ln",  # [1] as header
        "bm90IGpzb24.e30.c2ln",  # "not json"
        "eyJhbGciOiJSUzI1NiIsImtpZCI6MX0.e30.c2ln",  # kid 1, not a string
        "a b.c.d",
    ],
)
def test_malformed_tokens_are_refused(clock: FakeClock, token: str) -> None:
    error = rejected(verifier(clock), token)
    assert error.reason in ("malformed token", "algorithm not accepted")
    assert error.status == 401


def test_unfit_keys_are_named() -> None:
    short = SigningKey.rsa("short", bits=1024).private.public_key()
    assert "too short" in (unfit_reason(short, "RS256") or "")
    assert "at least 32 bytes" in (unfit_reason(HmacSecret(b"x" * 31), "HS256") or "")
    assert unfit_reason(HmacSecret(b"x" * 48), "HS384") is None
    assert "RSA key, not HMAC" in (unfit_reason(HmacSecret(SECRET), "RS256") or "")


def test_algorithm_lists() -> None:
    assert parse_algorithms(["rs256", "ES256", "RS256", "eddsa"]) == ("RS256", "ES256", "EdDSA")
    for bad in (["none"], ["RS256", "NONE"], ["RS257"], []):
        with pytest.raises(ValueError, match=r"never accepted|unknown|at least one"):
            parse_algorithms(bad)


# -- scopes ---------------------------------------------------------------------------------------
def test_required_scopes_come_from_scope_or_scp(clock: FakeClock, claims: Claims) -> None:
    check = verifier(clock, required_scopes=("orders.read",))
    assert check.check(RSA_KEY.sign(claims.make())) is not None
    assert check.check(RSA_KEY.sign(claims.make(scope=None, scp=["orders.read"]))) is not None
    for scope in ("orders.write profile", "", None):
        error = rejected(check, RSA_KEY.sign(claims.make(scope=scope)))
        assert (error.status, error.error) == (403, INSUFFICIENT_SCOPE)
    both = verifier(clock, required_scopes=("orders.read", "orders.write"))
    assert rejected(both, RSA_KEY.sign(claims.make())).status == 403


# -- claims as headers --------------------------------------------------------------------------
def test_claims_become_header_values(clock: FakeClock, claims: Claims) -> None:
    check = verifier(
        clock,
        claim_headers=(
            ("sub", "X-User-Id"),
            ("groups", "X-Groups"),
            ("realm_access.roles", "X-Roles"),
            ("https://idp.test/tenant", "X-Tenant"),
            ("admin", "X-Admin"),
            ("missing", "X-Missing"),
            ("name", "X-Name"),
        ),
    )
    made = claims.make(
        groups=["a", "b"], realm_access={"roles": ["r1", "r2"]}, admin=False, name="Zoë"
    )
    token = RSA_KEY.sign({**made, "https://idp.test/tenant": "t-1"})
    verified = check.check(token)
    assert verified is not None
    assert dict(verified.headers) == {
        b"X-User-Id": b"alice",
        b"X-Groups": b"a,b",
        b"X-Roles": b"r1,r2",
        b"X-Tenant": b"t-1",
        b"X-Admin": b"false",
        b"X-Name": "Zoë".encode(),
    }


def test_a_claim_that_would_split_the_head_is_not_written() -> None:
    assert header_value("alice\r\nX-Admin: true") is None
    assert header_value("a\x00b") is None
    assert header_value("tab\there") == b"tab\there"
    assert header_value({"k": [1, 2]}) == b'{"k":[1,2]}'
    assert header_value("x" * 5000) is None


# -- the cache of verified tokens ------------------------------------------------------------------
def test_a_token_is_verified_once_until_its_expiry(clock: FakeClock, claims: Claims) -> None:
    keys = Keys({"rsa-1": RSA_KEY.private.public_key()})
    check = verifier(clock, keys)
    token = RSA_KEY.sign(claims.make(ttl=100))
    for _ in range(5):
        assert check.check(token) is not None
    assert keys.lookups == 1
    clock.advance(131)  # exp + leeway passed
    assert rejected(check, token).reason == "token expired"
    assert keys.lookups == 1  # expired from the cache, without another verification


def test_a_new_key_set_makes_cached_tokens_verify_again(clock: FakeClock, claims: Claims) -> None:
    keys = Keys({"rsa-1": RSA_KEY.private.public_key()})
    check = verifier(clock, keys)
    token = RSA_KEY.sign(claims.make())
    assert check.check(token) is not None
    keys.keys = {"rsa-2": OTHER_RSA.private.public_key()}  # rsa-1 rotated out
    keys.generation += 1
    assert check.check(token) is None  # rsa-1 is now unknown: a lookup is due
    assert keys.lookups == 2


def test_refusals_are_not_cached_but_scope_verdicts_are(clock: FakeClock, claims: Claims) -> None:
    keys = Keys({"rsa-1": RSA_KEY.private.public_key()})
    check = verifier(clock, keys, required_scopes=("admin",))
    token = RSA_KEY.sign(claims.make())
    for _ in range(3):
        assert rejected(check, token).status == 403
    assert keys.lookups == 1
    bad = tampered(token)
    for _ in range(3):
        assert rejected(check, bad).reason == "signature invalid"
    assert keys.lookups == 4


def test_the_cache_is_bounded(clock: FakeClock, claims: Claims) -> None:
    keys = Keys({"rsa-1": RSA_KEY.private.public_key()})
    check = verifier(clock, keys, cache_size=2)
    tokens = [RSA_KEY.sign(claims.make(sub=f"u{i}")) for i in range(3)]
    for token in tokens:
        check.check(token)
    assert keys.lookups == 3
    check.check(tokens[2])
    check.check(tokens[1])
    assert keys.lookups == 3
    check.check(tokens[0])  # the oldest made room
    assert keys.lookups == 4


# -- unknown kids ----------------------------------------------------------------------------------
async def test_an_unknown_kid_waits_for_one_refresh(clock: FakeClock, claims: Claims) -> None:
    keys = Keys({}, later={"rsa-1": RSA_KEY.private.public_key()})
    check = verifier(clock, keys)
    token = RSA_KEY.sign(claims.make())
    assert check.check(token) is None
    verified = await check.verify(token)
    assert verified.subject == "alice"
    assert keys.refreshes == 1
    stranger = SigningKey.rsa("nobody").sign(claims.make())
    with pytest.raises(TokenRejected) as info:
        await check.verify(stranger)
    assert info.value.reason == "signing key unknown"
