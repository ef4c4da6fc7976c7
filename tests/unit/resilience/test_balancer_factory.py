from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from resilience.active import ActiveRequests
from resilience.balancer.consistent_hash import ConsistentHash
from resilience.balancer.factory import (
    POLICIES,
    BalancerSpec,
    make_balancer,
    parse_balancer_spec,
)
from resilience.balancer.least_request import LeastRequest
from resilience.balancer.random_choice import RandomChoice
from resilience.balancer.round_robin import RoundRobin
from resilience.balancer.weighted import WeightedRoundRobin
from resilience.balancer.zone import ZonePreference


@dataclass(frozen=True)
class Inst:
    instance_id: str
    weight: int = 1
    zone: str | None = None


CANDIDATES = [Inst("a1", zone="a"), Inst("a2", zone="a"), Inst("b1", zone="b")]


def _spec(policy: str) -> BalancerSpec:
    return parse_balancer_spec(policy, "header:X-User" if policy == "consistent_hash" else None)


@pytest.mark.parametrize(
    ("policy", "kind"),
    [
        ("round_robin", RoundRobin),
        ("random", RandomChoice),
        ("least_request", LeastRequest),
        ("weighted", WeightedRoundRobin),
        ("consistent_hash", ConsistentHash),
    ],
)
def test_every_policy_builds_and_chooses(policy: str, kind: type) -> None:
    balancer = make_balancer(
        _spec(policy), rng=random.Random(1), active=ActiveRequests(), local_zone=None
    )
    assert isinstance(balancer, kind)
    assert balancer.choose(CANDIDATES, "user-1") in CANDIDATES
    assert balancer.choose([]) is None


@pytest.mark.parametrize("policy", POLICIES)
def test_local_zone_wraps_in_zone_preference(policy: str) -> None:
    balancer = make_balancer(
        _spec(policy), rng=random.Random(1), active=ActiveRequests(), local_zone="a"
    )
    assert isinstance(balancer, ZonePreference)
    picks = {balancer.choose(CANDIDATES, f"user-{i}") for i in range(30)}
    assert picks <= set(CANDIDATES[:2])


def test_min_local_is_passed_on() -> None:
    balancer = make_balancer(
        BalancerSpec(), rng=random.Random(1), active=ActiveRequests(), local_zone="a", min_local=3
    )
    assert {balancer.choose(CANDIDATES) for _ in range(30)} == set(CANDIDATES)


def test_parse_accepts_valid_specs() -> None:
    assert parse_balancer_spec("round_robin", None) == BalancerSpec()
    assert parse_balancer_spec(" least_request ", "  ") == BalancerSpec("least_request")
    for hash_on in ("header:X-User-Id", "cookie:session", "query:user_id", "client_ip"):
        spec = parse_balancer_spec("consistent_hash", hash_on)
        assert spec == BalancerSpec("consistent_hash", hash_on)


def test_unknown_policy_lists_valid_ones_and_suggests() -> None:
    with pytest.raises(ValueError, match="did you mean 'round_robin'") as info:
        parse_balancer_spec("round-robin", None)
    assert all(policy in str(info.value) for policy in POLICIES)
    with pytest.raises(ValueError, match="unknown load-balancer policy 'fastest'"):
        parse_balancer_spec("fastest", None)


@pytest.mark.parametrize(
    ("hash_on", "message"),
    [
        (None, "requires hash_on"),
        ("header", "expected one of"),
        ("headers:X-User", "did you mean 'header'"),
        ("ip", "expected one of: header:<Name>, cookie:<name>, query:<name>, client_ip"),
        ("header:", "empty header name"),
        ("header:X User", "invalid header name"),
        ("cookie:a=b", "invalid cookie name"),
        ("query:a&b", "invalid query name"),
        ("client_ip:x", "expected one of"),
    ],
)
def test_bad_hash_on(hash_on: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_balancer_spec("consistent_hash", hash_on)


def test_hash_on_without_consistent_hash() -> None:
    with pytest.raises(ValueError, match="only applies to the consistent_hash policy"):
        parse_balancer_spec("round_robin", "header:X-User")


def test_spec_validates_itself() -> None:
    with pytest.raises(ValueError, match="valid policies"):
        BalancerSpec("bogus")
    with pytest.raises(ValueError, match="choices"):
        BalancerSpec("least_request", choices=0)
    spec = BalancerSpec("least_request", choices=3)
    balancer = make_balancer(spec, rng=random.Random(1), active=ActiveRequests(), local_zone=None)
    assert isinstance(balancer, LeastRequest)
    assert balancer._choices == 3
