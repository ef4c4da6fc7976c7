from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from resilience.balancer.weighted import WeightedRoundRobin


@dataclass(frozen=True)
class Inst:
    instance_id: str
    weight: int = 1
    zone: str | None = None


def _ids(balancer: WeightedRoundRobin, candidates: list[Inst], n: int) -> list[str]:
    picks = [balancer.choose(candidates) for _ in range(n)]
    return [pick.instance_id for pick in picks if pick is not None]


def test_smooth_interleaving_matches_nginx() -> None:
    candidates = [Inst("a", 5), Inst("b", 1), Inst("c", 1)]
    sequence = _ids(WeightedRoundRobin(), candidates, 7)
    assert sequence == ["a", "a", "b", "a", "c", "a", "a"]
    assert Counter(sequence) == {"a": 5, "b": 1, "c": 1}


def test_exact_shares_every_cycle() -> None:
    balancer = WeightedRoundRobin()
    candidates = [Inst("a", 3), Inst("b", 2), Inst("c", 1)]
    for _ in range(5):
        assert Counter(_ids(balancer, candidates, 6)) == {"a": 3, "b": 2, "c": 1}


def test_join_and_leave_between_calls() -> None:
    balancer = WeightedRoundRobin()
    a, b, c = Inst("a", 2), Inst("b", 1), Inst("c", 1)
    _ids(balancer, [a, b], 2)
    # c joins: it starts at 0 and the three share 2/1/1 from there on.
    assert Counter(_ids(balancer, [a, b, c], 8)) == {"a": 4, "b": 2, "c": 2}
    # b leaves: only a and c are picked, 2:1.
    assert Counter(_ids(balancer, [a, c], 6)) == {"a": 4, "c": 2}
    assert set(balancer._current) == {"a", "c"}  # departed state is dropped
    assert balancer.choose([]) is None


def test_zero_weight_only_when_nothing_else() -> None:
    balancer = WeightedRoundRobin()
    drained = [Inst("x", 0), Inst("y", -1)]
    assert _ids(balancer, [*drained, Inst("a", 1)], 5) == ["a"] * 5
    assert _ids(balancer, drained, 4) == ["x", "y", "x", "y"]


def test_deterministic() -> None:
    candidates = [Inst("a", 4), Inst("b", 3), Inst("c", 2)]
    assert _ids(WeightedRoundRobin(), candidates, 20) == _ids(WeightedRoundRobin(), candidates, 20)
