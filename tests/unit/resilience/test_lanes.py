"""Gray-release lanes in the call path: the sticky split's hash (pinned, so a change of hash
is caught: it would move users between lanes), the split, lane grouping and the picker's
lane-aware choice with fallback and strictness."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from discovery.instance import ServiceInstance
from resilience.balancer.round_robin import RoundRobin
from resilience.errors import NoInstanceAvailable
from resilience.lanes import (
    BUCKETS,
    STABLE,
    LaneIndex,
    NoLaneInstance,
    TrafficSplit,
    split_bucket,
    valid_lane,
)
from resilience.outlier import OutlierPolicy
from resilience.picker import InstancePicker
from resilience.runtime import RuntimeSettings, ServiceRuntimes
from tests.support.clock import FakeClock


@dataclass(frozen=True)
class Node:
    """A plain endpoint of our own protocol (what an east-west client might hand in)."""

    instance_id: str
    lane: str = STABLE
    weight: int = 1
    zone: str | None = None


# -- the sticky hash ---------------------------------------------------------------------------

# BLAKE2b-64 of "lane NUL key", modulo 10,000. These must never change: every gateway replica
# and every restart must put a user in the same bucket.
PINNED = [
    ("canary", "user-1", 8623),
    ("canary", "user-2", 4664),
    ("canary", "alice", 4138),
    ("blue", "alice", 6111),  # the lane salts the hash
    ("canary", "user-1000", 1714),
    ("canary", "é漢", 3128),  # UTF-8
]


@pytest.mark.parametrize(("lane", "key", "bucket"), PINNED)
def test_split_bucket_is_pinned(lane: str, key: str, bucket: int) -> None:
    assert split_bucket(lane, key) == bucket


def test_split_bucket_is_not_pythons_hash() -> None:
    # hash() of a str is salted per process: a bucket derived from it could not be pinned.
    assert all(0 <= split_bucket("canary", f"k{i}") < BUCKETS for i in range(100))
    assert split_bucket("canary", "user-1") == split_bucket("canary", "user-1")


def test_sticky_split_share_and_stickiness() -> None:
    split = TrafficSplit("canary", 20)
    lanes = [split.sticky(f"user-{i}") for i in range(10_000)]
    share = lanes.count("canary") / len(lanes)
    assert 0.18 < share < 0.22
    assert set(lanes) == {"canary", STABLE}
    # Bucket 1714 < 2000: in at 20 %; raising the share only adds users.
    assert split.sticky("user-1000") == "canary"
    assert TrafficSplit("canary", 17.14).sticky("user-1000") == STABLE
    assert TrafficSplit("canary", 17.15).sticky("user-1000") == "canary"
    wider = TrafficSplit("canary", 50)
    assert all(
        wider.sticky(f"user-{i}") == "canary" for i, lane in enumerate(lanes) if lane != STABLE
    )


def test_sticky_without_a_key_is_stable() -> None:
    split = TrafficSplit("canary", 100)
    assert split.sticky(None) == STABLE
    assert split.sticky("") == STABLE
    assert split.sticky("x") == "canary"
    assert TrafficSplit("canary", 0).sticky("x") == STABLE


def test_draw_uses_the_injected_rng() -> None:
    split = TrafficSplit("canary", 30)
    same_seed = [split.draw(random.Random(4)) for _ in range(2)]
    assert same_seed[0] == same_seed[1]
    rng = random.Random(11)
    draws = [split.draw(rng) for _ in range(5000)]
    assert 0.27 < draws.count("canary") / len(draws) < 0.33
    assert {TrafficSplit("c", 0).draw(rng) for _ in range(200)} == {STABLE}
    assert {TrafficSplit("c", 100).draw(rng) for _ in range(200)} == {"c"}


@pytest.mark.parametrize("percent", [-0.01, 100.01, float("nan")])
def test_split_refuses_a_percent_outside_0_to_100(percent: float) -> None:
    with pytest.raises(ValueError, match="percent"):
        TrafficSplit("canary", percent)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("canary", True),
        ("v2.1_b-3", True),
        ("9", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("", False),
        ("-canary", False),
        ("can ary", False),
        ("canary;x", False),
        ("can%61ry", False),
        ("canary,", False),
    ],
)
def test_valid_lane(name: str, ok: bool) -> None:
    assert valid_lane(name) is ok


# -- grouping ----------------------------------------------------------------------------------


def test_index_groups_by_lane_and_falls_back_to_stable() -> None:
    nodes = [Node("s1"), Node("c1", "canary"), Node("s2"), Node("b1", "blue")]
    index = LaneIndex(nodes)
    assert index.laned
    assert index.counts() == {"blue": 1, "canary": 1, STABLE: 2}
    assert [n.instance_id for n in index.choose(None)] == ["s1", "s2"]
    assert [n.instance_id for n in index.choose(STABLE)] == ["s1", "s2"]
    assert [n.instance_id for n in index.choose("canary")] == ["c1"]
    assert [n.instance_id for n in index.choose("green")] == ["s1", "s2"]  # fallback
    with pytest.raises(NoLaneInstance):
        index.choose("green", strict=True)
    assert [n.instance_id for n in index.choose("canary", strict=True)] == ["c1"]


def test_index_of_only_stable_instances_is_not_laned() -> None:
    index = LaneIndex([Node("s1"), Node("s2")])
    assert not index.laned
    assert list(LaneIndex([Node("c", "canary")]).choose(None)) == []  # never the canary


# -- the picker --------------------------------------------------------------------------------


def picker(
    members: list[ServiceInstance], *, strict: bool = False
) -> InstancePicker[ServiceInstance]:
    runtimes = ServiceRuntimes(
        RuntimeSettings(outlier=OutlierPolicy(consecutive_failures=1)),
        clock=FakeClock(),
        rng=random.Random(1),
    )
    return InstancePicker(
        "svc",
        lambda name: members,
        runtimes.get("svc"),
        RoundRobin(random.Random(3)),
        strict_lanes=strict,
    )


def instance(iid: str, lane: str | None = None, tag: str | None = None) -> ServiceInstance:
    return ServiceInstance(
        "svc",
        iid,
        "127.0.0.1",
        9000,
        metadata={"lane": lane} if lane else {},
        tags=(tag,) if tag else (),
    )


def test_picker_keeps_each_call_in_its_lane() -> None:
    members = [
        instance("s1"),
        instance("s2"),
        instance("c1", "canary"),
        instance("b1", tag="lane=blue"),
    ]
    p = picker(members)
    assert {p.pick(None, None).instance_id for _ in range(20)} == {"s1", "s2"}
    assert {p.pick(None, None, STABLE).instance_id for _ in range(20)} == {"s1", "s2"}
    assert {p.pick(None, None, "canary").instance_id for _ in range(20)} == {"c1"}
    assert {p.pick(None, None, "blue").instance_id for _ in range(20)} == {"b1"}
    fallback = p.pick(None, None, "green")
    assert fallback.lane == STABLE  # what the caller counts a fallback by


def test_picker_retries_stay_in_the_lane() -> None:
    members = [instance("s1"), instance("c1", "canary"), instance("c2", "canary")]
    p = picker(members)
    tried: set[str] = set()
    picks = [p.pick(tried, None, "canary").instance_id for _ in range(3)]
    assert set(picks[:2]) == {"c1", "c2"}
    assert picks[2] in {"c1", "c2"}  # nowhere new in the lane: not out of it


def test_strict_picker_refuses_a_lane_without_instances() -> None:
    p = picker([instance("s1"), instance("c1", "canary")], strict=True)
    with pytest.raises(NoLaneInstance, match="'svc' in lane 'green'"):
        p.pick(None, None, "green")
    assert isinstance(NoLaneInstance("x"), NoInstanceAvailable)  # the gateway's 503
    assert p.pick(None, None, "canary").instance_id == "c1"
    assert p.pick(None, None).instance_id == "s1"


def test_only_laned_instances_leave_stable_calls_without_an_instance() -> None:
    p = picker([instance("c1", "canary")])
    with pytest.raises(NoInstanceAvailable):
        p.pick(None, None)
    assert p.pick(None, None, "canary").instance_id == "c1"


def test_picker_regroups_when_the_snapshot_changes() -> None:
    snapshot: list[list[ServiceInstance]] = [[instance("s1")]]
    p = picker([])
    p._instances = lambda name: snapshot[0]
    assert p.pick(None, None, "canary").instance_id == "s1"  # no canary yet: stable
    snapshot[0] = [instance("s1"), instance("c1", "canary")]
    assert p.pick(None, None, "canary").instance_id == "c1"
    snapshot[0] = [instance("s1")]
    assert p.pick(None, None, "canary").instance_id == "s1"


def test_picker_takes_any_laned_endpoint() -> None:
    members = [Node("s1"), Node("c1", "canary")]
    runtimes = ServiceRuntimes(clock=FakeClock(), rng=random.Random(1))
    p: InstancePicker[Node] = InstancePicker(
        "svc", lambda name: members, runtimes.get("svc"), RoundRobin(random.Random(3))
    )
    assert p.pick(None, None, "canary").instance_id == "c1"
    assert p.pick(None, None).instance_id == "s1"
