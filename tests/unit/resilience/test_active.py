from __future__ import annotations

from resilience.active import ActiveRequests


def test_counts_in_flight_per_instance() -> None:
    active = ActiveRequests()
    active.begin("a")
    active.begin("a")
    active.begin("b")
    assert (active.count("a"), active.count("b"), active.count("c")) == (2, 1, 0)
    active.end("a")
    assert active.count("a") == 1


def test_never_negative_and_drops_idle_instances() -> None:
    active = ActiveRequests()
    active.begin("a")
    active.end("a")
    assert active.count("a") == 0
    assert len(active) == 0  # no key left behind for an idle (or departed) instance
    active.end("a")  # unmatched end
    active.end("never-seen")
    assert active.count("a") == 0
    assert len(active) == 0
    active.begin("a")
    assert active.count("a") == 1
