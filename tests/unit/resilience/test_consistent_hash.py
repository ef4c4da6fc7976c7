from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from resilience.balancer.consistent_hash import ConsistentHash
from resilience.balancer.round_robin import RoundRobin

T = TypeVar("T")

KEYS = [f"user-{i}" for i in range(10_000)]


@dataclass(frozen=True)
class Inst:
    instance_id: str
    weight: int = 1
    zone: str | None = None


class SpyBalancer:
    def __init__(self) -> None:
        self.calls = 0

    def choose(self, candidates: Sequence[T], key: Hashable | None = None) -> T | None:
        self.calls += 1
        return candidates[-1] if candidates else None


def _ring() -> ConsistentHash:
    return ConsistentHash(RoundRobin(random.Random(1)))


def _instances(n: int) -> list[Inst]:
    return [Inst(f"10.0.0.{i}:8080") for i in range(n)]


def _assign(balancer: ConsistentHash, candidates: list[Inst]) -> dict[str, str]:
    owners = {}
    for key in KEYS:
        chosen = balancer.choose(candidates, key)
        assert chosen is not None
        owners[key] = chosen.instance_id
    return owners


def test_adding_an_instance_moves_only_its_share_to_it() -> None:
    balancer = _ring()
    ten = _instances(10)
    before = _assign(balancer, ten)
    newcomer = Inst("10.0.0.99:8080")
    after = _assign(balancer, [*ten, newcomer])
    moved = [key for key in KEYS if before[key] != after[key]]
    assert len(moved) / len(KEYS) <= 1.5 / 11
    assert len(moved) / len(KEYS) >= 0.5 / 11
    assert {after[key] for key in moved} == {newcomer.instance_id}


def test_removing_an_instance_moves_only_its_keys() -> None:
    balancer = _ring()
    ten = _instances(10)
    before = _assign(balancer, ten)
    gone = ten[3]
    after = _assign(balancer, [i for i in ten if i is not gone])
    moved = {key for key in KEYS if before[key] != after[key]}
    assert moved == {key for key in KEYS if before[key] == gone.instance_id}
    assert 0.05 <= len(moved) / len(KEYS) <= 0.15


def test_keys_spread_evenly() -> None:
    counts = Counter(_assign(_ring(), _instances(10)).values())
    mean = len(KEYS) / 10
    assert len(counts) == 10
    assert all(abs(count - mean) <= 0.35 * mean for count in counts.values())


def test_same_key_same_instance_everywhere() -> None:
    instances = _instances(10)
    first = _assign(_ring(), instances)
    # A separately built ring, fed the instances in another order, agrees on every key...
    shuffled = list(instances)
    random.Random(5).shuffle(shuffled)
    assert _assign(ConsistentHash(RoundRobin(random.Random(9)), vnodes=160), shuffled) == first
    # ...and so would another process: the placement is pinned, not salted per process.
    assert [first[key] for key in ("user-42", "user-7", "user-1000")] == [
        "10.0.0.5:8080",
        "10.0.0.3:8080",
        "10.0.0.7:8080",
    ]


def test_key_types() -> None:
    balancer = _ring()
    instances = _instances(5)
    assert balancer.choose(instances, b"abc") is balancer.choose(instances, "abc")
    assert balancer.choose(instances, 12345) is balancer.choose(instances, "12345")


def test_no_key_uses_fallback() -> None:
    spy = SpyBalancer()
    balancer = ConsistentHash(spy)
    instances = _instances(3)
    assert balancer.choose(instances) is instances[-1]
    assert balancer.choose(instances, None) is instances[-1]
    assert spy.calls == 2
    assert balancer.choose([], "k") is None
    assert spy.calls == 2


def test_ring_rebuilt_only_when_the_set_changes() -> None:
    balancer = _ring()
    instances = _instances(3)
    balancer.choose(instances, "k")
    ring = balancer._points
    balancer.choose(list(instances), "other")  # equal set, new list object
    assert balancer._points is ring
    balancer.choose(instances[:2], "k")
    assert balancer._points is not ring
    # A weight change is a different ring too.
    balancer.choose([Inst(instances[0].instance_id, weight=2), instances[1]], "k")
    assert len(balancer._points) == 3 * 160


def test_weights_scale_share_and_drained_instances_are_off_the_ring() -> None:
    heavy = [Inst("a", weight=2), Inst("b"), Inst("c")]
    counts = Counter(_assign(_ring(), heavy).values())
    assert counts["a"] > 1.5 * counts["b"]
    assert counts["a"] > 1.5 * counts["c"]

    drained = [Inst("a"), Inst("b"), Inst("z", weight=0)]
    assert "z" not in set(_assign(_ring(), drained).values())
    all_drained = [Inst("x", weight=0), Inst("y", weight=0)]
    assert set(_assign(_ring(), all_drained).values()) == {"x", "y"}

    # Only ratios count: 100/100 builds the same ring as 1/1.
    big = _ring()
    big.choose([Inst("a", weight=100), Inst("b", weight=100)], "k")
    assert len(big._points) == 2 * 160


def test_a_deep_copy_shares_the_ring_and_chooses_as_the_original() -> None:
    # InstancePicker.preview copies the balancer per explain: a ring of thousands of points
    # must not be copied each time, and the copy must answer as the original does.
    members = [Inst(f"i{i}", 1 + i % 5) for i in range(50)]
    ring = ConsistentHash(RoundRobin(random.Random(2)))
    ring.choose(members, "warm")
    twin = copy.deepcopy(ring)
    assert twin._points is ring._points
    assert all(twin.choose(members, f"u{n}") is ring.choose(members, f"u{n}") for n in range(50))
    assert twin.choose(members, None) is ring.choose(members, None)  # the fallback's position
