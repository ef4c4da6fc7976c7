"""From a route's balancer settings to a balancer: validation happens once, at config load, so a
typo fails the config with a helpful message instead of surfacing on the first request.

Extracting the hash key from a request (header, cookie, query parameter, client address) is the
gateway's job; here ``hash_on`` is only checked for form and carried along in the spec.
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass

from resilience.active import ActiveRequests
from resilience.balancer.base import LoadBalancer
from resilience.balancer.consistent_hash import ConsistentHash
from resilience.balancer.least_request import LeastRequest
from resilience.balancer.random_choice import RandomChoice
from resilience.balancer.round_robin import RoundRobin
from resilience.balancer.weighted import WeightedRoundRobin
from resilience.balancer.zone import ZonePreference

POLICIES = ("round_robin", "random", "least_request", "weighted", "consistent_hash")
HASH_ON_FORMS = ("header:<Name>", "cookie:<name>", "query:<name>", "client_ip")

# RFC 9110 token: what a header (and a cookie) name may consist of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Query parameter names are freer, but these would never survive the query-string split.
_QUERY_NAME = re.compile(r"[^\s&=#]+")
_NAME_PATTERNS = {"header": _TOKEN, "cookie": _TOKEN, "query": _QUERY_NAME}


@dataclass(frozen=True)
class BalancerSpec:
    policy: str = "round_robin"
    hash_on: str | None = None  # consistent_hash only: where the gateway takes the key from
    choices: int = 2  # least_request only: how many candidates to sample

    def __post_init__(self) -> None:
        # Validated here too, so a spec built directly in code cannot be invalid either.
        _check_policy(self.policy)
        _check_hash_on(self.policy, self.hash_on)
        if self.choices < 1:
            raise ValueError(f"balancer choices must be >= 1, got {self.choices}")


def parse_balancer_spec(policy: str, hash_on: str | None) -> BalancerSpec:
    """Validate route config values; surrounding whitespace is ignored and a blank
    ``hash_on`` counts as absent (YAML makes both easy to write by accident)."""
    hash_on = hash_on.strip() if hash_on is not None else None
    return BalancerSpec(policy=policy.strip(), hash_on=hash_on or None)


def balancer_of(policy: object | None, hash_on: object | None) -> BalancerSpec:
    """From a document's ``load-balancer`` and ``hash-on`` values, either possibly absent (a
    hash key alone means ``consistent_hash``). ValueError says what is wrong."""
    return parse_balancer_spec(
        str(policy) if policy is not None else "consistent_hash",
        str(hash_on) if hash_on is not None else None,
    )


def make_balancer(
    spec: BalancerSpec,
    *,
    rng: random.Random,
    active: ActiveRequests,
    local_zone: str | None,
    min_local: int = 2,
) -> LoadBalancer:
    balancer: LoadBalancer
    # Random and least-request draw from a generator of their own, seeded from ``rng``: a
    # copy of the balancer (``InstancePicker.preview``) then draws what the next call will.
    if spec.policy == "round_robin":
        balancer = RoundRobin(rng)
    elif spec.policy == "random":
        balancer = RandomChoice(random.Random(rng.getrandbits(64)))
    elif spec.policy == "least_request":
        balancer = LeastRequest(active, random.Random(rng.getrandbits(64)), spec.choices)
    elif spec.policy == "weighted":
        balancer = WeightedRoundRobin()
    elif spec.policy == "consistent_hash":
        # Requests without a key (no such header yet, say) still need an instance.
        balancer = ConsistentHash(RoundRobin(rng))
    else:  # pragma: no cover - BalancerSpec rejects unknown policies
        raise AssertionError(spec.policy)
    if local_zone is not None:
        balancer = ZonePreference(balancer, local_zone, min_local)
    return balancer


def _did_you_mean(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(
            f"unknown load-balancer policy {policy!r}{_did_you_mean(policy, POLICIES)}; "
            f"valid policies: {', '.join(POLICIES)}"
        )


def _check_hash_on(policy: str, hash_on: str | None) -> None:
    forms = ", ".join(HASH_ON_FORMS)
    if policy != "consistent_hash":
        if hash_on is not None:
            raise ValueError(
                f"hash_on {hash_on!r} only applies to the consistent_hash policy, "
                f"not {policy!r}; remove it or set the policy to consistent_hash"
            )
        return
    if hash_on is None:
        raise ValueError(f"the consistent_hash policy requires hash_on, one of: {forms}")
    if hash_on == "client_ip":
        return
    kind, colon, name = hash_on.partition(":")
    pattern = _NAME_PATTERNS.get(kind)
    if not colon or pattern is None:
        kinds = (*_NAME_PATTERNS, "client_ip")
        raise ValueError(
            f"invalid hash_on {hash_on!r}{_did_you_mean(kind, kinds)}; expected one of: {forms}"
        )
    if not pattern.fullmatch(name):
        what = "an empty" if not name else "an invalid"
        raise ValueError(f"invalid hash_on {hash_on!r}: {what} {kind} name; expected {kind}:<name>")
