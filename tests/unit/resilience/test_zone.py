from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from resilience.balancer.round_robin import RoundRobin
from resilience.balancer.zone import ZonePreference


@dataclass(frozen=True)
class Inst:
    instance_id: str
    weight: int = 1
    zone: str | None = None


def _chosen(balancer: ZonePreference, candidates: list[Inst], n: int = 30) -> set[str]:
    picks = [balancer.choose(candidates) for _ in range(n)]
    return {pick.instance_id for pick in picks if pick is not None}


def test_enough_local_instances_keeps_traffic_local() -> None:
    candidates = [Inst("a1", zone="a"), Inst("b1", zone="b"), Inst("a2", zone="a"), Inst("n")]
    balancer = ZonePreference(RoundRobin(random.Random(1)), "a", min_local=2)
    assert _chosen(balancer, candidates) == {"a1", "a2"}


def test_too_few_local_instances_spill_over() -> None:
    candidates = [Inst("a1", zone="a"), Inst("b1", zone="b"), Inst("b2", zone="b")]
    balancer = ZonePreference(RoundRobin(random.Random(1)), "a", min_local=2)
    assert _chosen(balancer, candidates) == {"a1", "b1", "b2"}
    assert _chosen(ZonePreference(RoundRobin(), "c"), candidates) == {"a1", "b1", "b2"}


def test_no_local_zone_is_pass_through() -> None:
    candidates = [Inst("a1", zone="a"), Inst("a2", zone="a"), Inst("b1", zone="b")]
    balancer = ZonePreference(RoundRobin(random.Random(1)), None)
    assert _chosen(balancer, candidates) == {"a1", "a2", "b1"}
    assert balancer.choose([]) is None


def test_min_local_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_local"):
        ZonePreference(RoundRobin(), "a", min_local=0)
