from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from resilience.active import ActiveRequests
from resilience.balancer.least_request import LeastRequest


@dataclass(frozen=True)
class Inst:
    instance_id: str
    weight: int = 1
    zone: str | None = None


def _picks(balancer: LeastRequest, candidates: list[Inst], n: int) -> Counter[str]:
    picks: Counter[str] = Counter()
    for _ in range(n):
        chosen = balancer.choose(candidates)
        assert chosen is not None
        picks[chosen.instance_id] += 1
    return picks


def test_busy_instance_never_wins_against_idle_ones() -> None:
    active = ActiveRequests()
    for _ in range(10):
        active.begin("a")
    candidates = [Inst("a"), Inst("b"), Inst("c")]
    picks = _picks(LeastRequest(active, random.Random(1)), candidates, 1000)
    # Two distinct samples of three always include b or c, which beat a.
    assert picks["a"] == 0
    assert picks["b"] + picks["c"] == 1000
    assert picks["b"] > 300
    assert picks["c"] > 300


def test_equal_load_is_roughly_uniform() -> None:
    candidates = [Inst(name) for name in "abcde"]
    picks = _picks(LeastRequest(ActiveRequests(), random.Random(2)), candidates, 3000)
    expected = 3000 / len(candidates)
    for candidate in candidates:
        assert abs(picks[candidate.instance_id] - expected) <= 0.2 * expected


def test_more_choices_find_the_idle_one() -> None:
    active = ActiveRequests()
    candidates = [Inst(str(i)) for i in range(5)]
    for candidate in candidates[1:]:
        active.begin(candidate.instance_id)
    # Sampling all five always finds the only idle instance.
    picks = _picks(LeastRequest(active, random.Random(3), choices=5), candidates, 100)
    assert picks == {"0": 100}


def test_empty_single_and_bad_choices() -> None:
    balancer = LeastRequest(ActiveRequests(), random.Random(4))
    assert balancer.choose([]) is None
    only = Inst("only")
    assert balancer.choose([only]) is only
    with pytest.raises(ValueError, match="choices"):
        LeastRequest(ActiveRequests(), random.Random(4), choices=0)
