"""The live numbers' bookkeeping: counters fed at flush, rings of 5-second slots, windows,
bucket quantiles, several workers and a worker that restarts, on an injected clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.observability import multiprocess
from gateway.observability.buckets import BUCKETS
from gateway.observability.live import SLOT, InFlight, LiveCounters, LiveStats, quantile
from gateway.observability.metrics import Metrics


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def buckets(seconds: float, count: int = 1) -> list[float]:
    """One bucket row holding ``count`` observations of ``seconds``."""
    row = [0.0] * (len(BUCKETS) + 1)
    index = next((i for i, bound in enumerate(BUCKETS) if seconds <= bound), len(BUCKETS))
    row[index] = float(count)
    return row


def test_quantiles_interpolate_within_the_bucket_as_prometheus_does() -> None:
    # 100 observations in (0.01, 0.025]: the median is halfway up that bucket.
    assert quantile(0.5, buckets(0.02, 100)) == pytest.approx(0.0175)
    # 99 fast and 1 slow: p99 is still in the fast bucket, p99.5 in the slow one.
    row = [a + b for a, b in zip(buckets(0.0008, 99), buckets(0.4), strict=True)]
    assert quantile(0.99, row) == pytest.approx(0.001)
    assert 0.25 < (quantile(0.995, row) or 0) <= 0.5
    assert quantile(0.5, [0.0] * (len(BUCKETS) + 1)) is None
    # Beyond the last bound, the last bound.
    assert quantile(0.5, buckets(99.0, 3)) == BUCKETS[-1]


def test_windows_rates_and_errors_from_one_worker() -> None:
    clock = Clock()
    counters = LiveCounters()
    stats = LiveStats(clock)
    stats.sample([("1", counters.snapshot(InFlight()))])  # the first sample: nothing yet
    for _ in range(60):  # every second, as the metrics flush does
        clock.now += 1.0
        counters.requests("orders", "orders", "o-1", 200, 9.0, buckets(0.004, 9))
        counters.requests("orders", "orders", "o-1", 503, 1.0, buckets(0.2))
        counters.attempts("orders", "o-1", 2, 9)
        counters.attempts("orders", "o-1", 0, 1)
        stats.sample([("1", counters.snapshot(InFlight({"orders": 2}, {("orders", "o-1"): 2})))])
    route = stats.route("orders")
    minute = route["1m"]
    # A minute is the current slot so far and the eleven before it: here the 56 samples
    # since the slot boundary 55 s ago (slots are whole, so a window covers 55 to 60 s).
    assert minute["requests"] == 560
    assert minute["errors"] == 56
    assert minute["errorRate"] == pytest.approx(0.1)
    assert minute["rate"] == pytest.approx(10.0, rel=0.05)
    assert 0.0025 < minute["p50"] <= 0.005
    assert 0.1 < minute["p99"] <= 0.25
    assert route["inFlight"] == 2
    instance = stats.instance("orders", "o-1")
    assert instance["1m"]["attempts"] == 560
    assert instance["1m"]["failedAttempts"] == 56
    assert instance["5m"]["attempts"] == 600
    assert instance["inFlight"] == 2
    totals = stats.totals()
    assert totals["inFlight"] == 2
    assert totals["1m"]["requests"] == 560
    assert totals["5m"]["requests"] == 600
    assert totals["5m"]["rate"] == pytest.approx(10.0)
    series = stats.series()
    assert series["interval"] == SLOT
    assert len(series["timestamps"]) == len(series["rate"]) >= 12
    assert all(t % SLOT == 0 for t in series["timestamps"])


def test_the_slot_still_filling_is_rated_over_the_time_its_counts_cover() -> None:
    # Samples a second apart, a quarter of a second past each slot boundary: the first sample
    # of a slot carries a second of requests of which three quarters came before the slot.
    clock = Clock(1_000_000.25)
    counters = LiveCounters()
    stats = LiveStats(clock)
    stats.sample([("1", counters.snapshot(InFlight()))])
    rates: list[float] = []
    for _ in range(40):
        clock.now += 1.0
        counters.requests("r", None, None, 200, 10.0, buckets(0.001, 10))
        stats.sample([("1", counters.snapshot(InFlight()))])
        rates.append(stats.series()["rate"][-1])
        assert stats.totals()["1m"]["rate"] == pytest.approx(10.0)
    assert rates == pytest.approx([10.0] * 40)


def test_old_slots_leave_the_window_and_idle_routes_are_forgotten() -> None:
    clock = Clock()
    counters = LiveCounters()
    stats = LiveStats(clock)
    stats.sample([("1", counters.snapshot(InFlight()))])
    counters.requests("gone", None, None, 200, 5.0, buckets(0.01, 5))
    clock.now += 1
    stats.sample([("1", counters.snapshot(InFlight()))])
    assert stats.route("gone")["1m"]["requests"] == 5
    clock.now += 2 * 60
    stats.sample([("1", counters.snapshot(InFlight()))])
    assert stats.route("gone")["1m"]["requests"] == 0
    assert stats.route("gone")["5m"]["requests"] == 5
    clock.now += 5 * 60
    stats.sample([("1", counters.snapshot(InFlight()))])
    assert stats.route("gone")["5m"]["requests"] == 0
    assert "gone" not in stats._routes  # nothing kept for a route idle five minutes


def test_several_workers_add_up_and_a_restarted_worker_counts_from_zero() -> None:
    clock = Clock()
    stats = LiveStats(clock)
    a, b = LiveCounters(), LiveCounters()
    stats.sample([("10", a.snapshot(InFlight())), ("11", b.snapshot(InFlight()))])
    a.requests("r", None, None, 200, 30.0, buckets(0.001, 30))
    b.requests("r", None, None, 200, 12.0, buckets(0.001, 12))
    clock.now += 1
    stats.sample([("10", a.snapshot(InFlight())), ("11", b.snapshot(InFlight()))])
    assert stats.route("r")["1m"]["requests"] == 42
    # Worker 11 dies; its successor (a new pid) starts from zero and counts 4 requests.
    successor = LiveCounters()
    successor.requests("r", None, None, 200, 4.0, buckets(0.001, 4))
    clock.now += 1
    stats.sample([("10", a.snapshot(InFlight())), ("12", successor.snapshot(InFlight()))])
    assert stats.route("r")["1m"]["requests"] == 46
    # A file read back smaller than before (the same pid restarted): all of it is new.
    reset = LiveCounters()
    reset.requests("r", None, None, 200, 1.0, buckets(0.001))
    clock.now += 1
    stats.sample([("10", reset.snapshot(InFlight())), ("12", successor.snapshot(InFlight()))])
    assert stats.route("r")["1m"]["requests"] == 47


def test_metrics_flush_feeds_the_counters_per_route_and_instance() -> None:
    counters = LiveCounters()
    metrics = Metrics(live=counters)
    metrics.request("orders", "GET", 200, 0.003, "stable", "orders", "o-1")
    metrics.request("orders", "GET", 200, 0.004, "stable", "orders", "o-2")
    metrics.request("orders", "POST", 502, 0.5, "stable", "orders", "o-1")
    metrics.request("", "GET", 404, 0.0001)
    metrics.attempt("orders", "o-1", "127.0.0.1", 9001, None)
    metrics.flush()
    assert counters.routes["orders"][:2] == [3.0, 1.0]
    assert counters.routes[""][:2] == [1.0, 0.0]
    assert counters.instances[("orders", "o-1")][:2] == [2.0, 1.0]
    assert counters.instances[("orders", "o-2")][:2] == [1.0, 0.0]
    snapshot: dict[str, Any] = counters.snapshot(InFlight())
    assert [s for s, _, _ in snapshot["instances"]] == ["orders", "orders"]
    # The failed attempt (no answer) is counted on its instance.
    assert counters.instances[("orders", "o-1")][-2:] == [1.0, 1.0]


def test_the_first_sample_is_rated_from_when_the_rings_began() -> None:
    clock = Clock()
    stats = LiveStats(clock)
    counters = LiveCounters(clock)
    counters.requests("r", None, None, 200, 100.0, buckets(0.001, 100))
    clock.now += 1.0
    stats.sample([("1", counters.snapshot(InFlight()))])
    assert stats.totals()["1m"]["rate"] == pytest.approx(100.0)
    assert stats.series()["rate"][-1] == pytest.approx(100.0)


def test_a_restarted_management_worker_takes_older_workers_history_as_a_baseline() -> None:
    clock = Clock()
    veteran = LiveCounters(clock)  # counting for an hour before the rings began
    veteran.requests("r", None, None, 200, 1e6, buckets(0.001, 1_000_000))
    clock.now += 3600
    stats = LiveStats(clock)
    clock.now += 1
    stats.sample([("7", veteran.snapshot(InFlight()))])
    assert stats.route("r")["5m"]["requests"] == 0
    veteran.requests("r", None, None, 200, 20.0, buckets(0.001, 20))
    clock.now += 1
    stats.sample([("7", veteran.snapshot(InFlight()))])
    assert stats.route("r")["5m"]["requests"] == 20


def test_idle_counter_rows_are_dropped_and_a_returning_row_counts_from_zero() -> None:
    clock = Clock()
    counters = LiveCounters(clock)
    stats = LiveStats(clock)
    counters.requests("old", "svc", "i-1", 200, 5.0, buckets(0.001, 5))
    for _ in range(2 * 360 + 1):
        clock.now += 1
        stats.sample([("1", counters.snapshot(InFlight()))])
    assert "old" not in counters.routes and ("svc", "i-1") not in counters.instances
    counters.requests("old", "svc", "i-1", 200, 3.0, buckets(0.001, 3))
    clock.now += 1
    stats.sample([("1", counters.snapshot(InFlight()))])
    assert stats.route("old")["1m"]["requests"] == 3
    assert stats.instance("svc", "i-1")["1m"]["requests"] == 3


def test_a_configured_metrics_directory_is_emptied_of_an_earlier_runs_live_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("live-123.json", "live-123.tmp", "counter_123.db", "keep.txt"):
        (tmp_path / name).write_text("{}")
    monkeypatch.setenv(multiprocess.ENV, str(tmp_path))
    assert multiprocess.prepare() == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
