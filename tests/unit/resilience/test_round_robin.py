from __future__ import annotations

import random

from resilience.balancer.round_robin import RoundRobin


def test_cycles_evenly_and_survives_changing_lists() -> None:
    rr = RoundRobin(random.Random(1))
    picks = [rr.choose(["a", "b", "c"]) for _ in range(9)]
    assert sorted(picks) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3  # type: ignore[type-var]
    assert all(picks[i] != picks[i + 1] for i in range(8))
    assert rr.choose(["only"]) == "only"
    assert rr.choose([]) is None


def test_random_start_differs_between_instances() -> None:
    starts = {RoundRobin(random.Random(seed)).choose(list(range(100))) for seed in range(20)}
    assert len(starts) > 1
