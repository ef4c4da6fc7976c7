from __future__ import annotations

from dataclasses import dataclass

import pytest

from resilience.outlier import OutlierDetector, OutlierPolicy
from tests.support.clock import FakeClock


@dataclass(frozen=True)
class Inst:
    """An ``Endpoint``: outlier detection reads only the id."""

    instance_id: str
    weight: int = 1
    zone: str | None = None


def fail(det: OutlierDetector, iid: str, times: int, total: int = 10) -> list[bool]:
    return [det.record(iid, False, total) for _ in range(times)]


def make(**kw: float) -> tuple[OutlierDetector, FakeClock]:
    clock = FakeClock()
    return OutlierDetector(OutlierPolicy(**kw), clock), clock  # type: ignore[arg-type]


def test_five_consecutive_failures_eject() -> None:
    det, _ = make()
    assert fail(det, "a", 5) == [False, False, False, False, True]
    assert det.ejected() == {"a": 30.0}
    insts = [Inst("a"), Inst("b"), Inst("c")]
    assert det.available(insts) == [Inst("b"), Inst("c")]


def test_success_in_between_resets_the_streak() -> None:
    det, _ = make()
    fail(det, "a", 4)
    assert det.record("a", True, 10) is False
    assert fail(det, "a", 4) == [False] * 4
    assert det.ejected() == {}
    assert det.record("a", False, 10) is True


def test_ejection_grows_with_repeat_offences_and_is_capped() -> None:
    det, clock = make(max_ejection=70.0)
    durations = []
    for _ in range(4):
        assert fail(det, "a", 5)[-1] is True
        left = det.ejected()["a"]
        durations.append(left)
        clock.advance(left)  # re-admitted exactly when its time is up
    assert durations == [30.0, 60.0, 70.0, 70.0]
    assert det.snapshot()["a"]["ejection_count"] == 4


def test_ejection_count_decays_while_healthy() -> None:
    det, clock = make()
    for _ in range(3):
        fail(det, "a", 5)
        clock.advance(det.ejected()["a"])
    assert det.snapshot()["a"]["ejection_count"] == 3
    clock.advance(2 * 30.0)  # two full base periods back in rotation
    assert det.snapshot()["a"]["ejection_count"] == 1
    fail(det, "a", 5)
    assert det.ejected() == {"a": 60.0}


def test_readmitted_by_itself_when_time_is_up() -> None:
    det, clock = make()
    insts = [Inst("a"), Inst("b")]
    fail(det, "a", 5)
    assert det.available(insts) == [Inst("b")]
    clock.advance(29.9)
    assert det.available(insts) == [Inst("b")]
    clock.advance(0.1)
    assert det.available(insts) is insts
    assert det.ejected() == {}
    snap = det.snapshot()["a"]
    assert snap == {"consecutive_failures": 0, "ejection_count": 1, "ejected_until": None}


def test_results_while_ejected_are_ignored() -> None:
    det, clock = make()
    fail(det, "a", 5)
    clock.advance(10)
    assert fail(det, "a", 10) == [False] * 10
    assert det.record("a", True, 10) is False
    assert det.ejected() == {"a": 20.0}
    assert det.snapshot()["a"]["ejected_until"] == pytest.approx(clock.time() + 20.0)


def test_max_ejection_percent_caps_ejections() -> None:
    det, _ = make()
    ejected = [fail(det, f"i{n}", 5, total=10)[-1] for n in range(10)]
    assert ejected == [True] * 5 + [False] * 5
    assert len(det.ejected()) == 5
    insts = [Inst(f"i{n}") for n in range(10)]
    assert det.available(insts) == insts[5:]


def test_capped_instance_is_ejected_once_room_frees_up() -> None:
    det, clock = make(max_ejection=300.0)
    fail(det, "a", 5, total=2)
    clock.advance(1)
    assert fail(det, "b", 5, total=2)[-1] is False
    clock.advance(29)  # "a" is re-admitted
    assert det.record("b", False, 2) is True
    assert set(det.ejected()) == {"b"}


def test_one_of_two_may_be_ejected_and_at_least_one_always() -> None:
    det, _ = make()
    assert fail(det, "a", 5, total=2)[-1] is True
    assert fail(det, "b", 5, total=2)[-1] is False
    det, _ = make(max_ejection_percent=20.0)
    assert fail(det, "a", 5, total=3)[-1] is True  # 1 of 3 is over 20 %, but one may go
    assert fail(det, "b", 5, total=3)[-1] is False


def test_single_instance_is_never_ejected() -> None:
    det, _ = make()
    assert fail(det, "only", 50, total=1) == [False] * 50
    assert det.ejected() == {}


def test_panic_returns_everyone_below_threshold() -> None:
    det, _ = make(max_ejection_percent=100.0)
    insts = [Inst(f"i{n}") for n in range(4)]
    fail(det, "i0", 5, total=4)
    fail(det, "i1", 5, total=4)
    assert det.available(insts) == insts[2:]  # exactly 50 % healthy: not yet panic
    fail(det, "i2", 5, total=4)
    assert det.available(insts) is insts  # 25 % healthy: try everyone
    assert len(det.ejected()) == 3


def test_fast_path_returns_the_same_object() -> None:
    det, _ = make()
    insts = [Inst("a"), Inst("b")]
    assert det.available(insts) is insts
    fail(det, "zzz", 5)  # ejected, but not among these candidates
    assert det.available(insts) is insts
    assert det.available([]) == []


def test_retain_forgets_departed_instances() -> None:
    det, _ = make()
    fail(det, "a", 5)
    fail(det, "b", 2)
    det.retain({"b"})
    assert det.ejected() == {}
    assert set(det.snapshot()) == {"b"}


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="consecutive_failures"):
        OutlierPolicy(consecutive_failures=0)
    with pytest.raises(ValueError, match="max_ejection"):
        OutlierPolicy(base_ejection=10.0, max_ejection=5.0)
