from __future__ import annotations

import random

from resilience.balancer.random_choice import RandomChoice


def test_every_candidate_reachable() -> None:
    balancer = RandomChoice(random.Random(7))
    candidates = ["a", "b", "c", "d"]
    assert {balancer.choose(candidates) for _ in range(200)} == set(candidates)


def test_empty_and_single() -> None:
    balancer = RandomChoice(random.Random(7))
    assert balancer.choose([]) is None
    assert balancer.choose(["only"]) == "only"


def test_deterministic_for_a_seed() -> None:
    candidates = list(range(50))
    first, again = RandomChoice(random.Random(3)), RandomChoice(random.Random(3))
    assert [first.choose(candidates) for _ in range(20)] == [
        again.choose(candidates) for _ in range(20)
    ]
