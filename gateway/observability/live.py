"""Live numbers for the dashboard and ``/actuator/gateway/stats``: per route and per service
instance, request rate, error rate and p50/p99 latency over the last 1 and 5 minutes, and
requests in flight.

Nothing here runs per request. The request path already bumps one row per (route, method,
status, lane, service, instance) in ``Metrics``; at each flush (every second) those rows are
added up here (``LiveCounters``, cumulative, per worker). With ``GATEWAY_WORKERS`` > 1 every
worker writes its counters to a small file beside prometheus-client's (``publish``) and the
management worker reads them all (``read_peers``), so the numbers are the whole gateway's.

``LiveStats`` keeps fixed-size rings: 60 slots of 5 seconds per route, per instance and for the
whole gateway. Each sample adds the counters' growth since the previous sample of the same
worker to the current slot; a window is the sum of its slots. Latency quantiles come from the
same buckets as ``meshgate_request_duration_seconds``, interpolated within a bucket as
Prometheus' ``histogram_quantile`` does.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.exchange import Exchange
from gateway.observability.buckets import BUCKETS as BOUNDS
from gateway.observability.multiprocess import LIVE_PREFIX

SLOT = 5.0  # seconds per ring slot
SLOTS = 60  # 5 minutes
WINDOWS = (("1m", 12), ("5m", 60))  # name, slots

# A route row: requests, 5xx, then one count per latency bucket (+Inf last).
_R = 2 + len(BOUNDS) + 1
# An instance row: a route row, then upstream attempts and failed ones (5xx or no answer).
_I = _R + 2
_ATTEMPTS = _R
_FAILED = _R + 1

InstanceKey = tuple[str, str]  # (service, instance id)

FILE_PREFIX = LIVE_PREFIX
FORGET = 360.0  # seconds: idle counter rows and vanished workers are forgotten after this


@dataclass(slots=True)
class InFlight:
    """Requests being handled now, by route id and by (service, instance)."""

    routes: dict[str, int] = field(default_factory=dict)
    instances: dict[InstanceKey, int] = field(default_factory=dict)

    def add(self, other: InFlight) -> None:
        for key, count in other.routes.items():
            self.routes[key] = self.routes.get(key, 0) + count
        for ikey, count in other.instances.items():
            self.instances[ikey] = self.instances.get(ikey, 0) + count

    @property
    def total(self) -> int:
        return sum(self.routes.values())


def in_flight(exchanges: Iterable[Exchange]) -> InFlight:
    """Count the requests being answered by route and by the instance they went to (read
    once a second from the listener's connections: nothing is counted per request)."""
    counts = InFlight()
    routes = counts.routes
    instances = counts.instances
    for exchange in exchanges:
        route = exchange.route
        key = route.id if route is not None else ""
        routes[key] = routes.get(key, 0) + 1
        target = exchange.target
        if target is not None and target.service is not None and target.instance_id is not None:
            ikey = (target.service, target.instance_id)
            instances[ikey] = instances.get(ikey, 0) + 1
    return counts


class LiveCounters:
    """One worker's cumulative counts since it started (``since``, wall seconds), fed at
    each metrics flush. A row that has not grown for one to two ``FORGET`` periods is
    dropped, so routes and instances that came and went do not pile up (a reader sees a row
    that comes back as a new one: it starts from zero)."""

    __slots__ = ("_clock", "_grown", "_pruned", "instances", "routes", "since")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.since = clock()
        self.routes: dict[str, list[float]] = {}
        self.instances: dict[InstanceKey, list[float]] = {}
        self._grown: set[str | InstanceKey] = set()
        self._pruned = self.since

    def requests(
        self,
        route: str,
        service: str | None,
        instance: str | None,
        status: int,
        count: float,
        buckets: list[float],
    ) -> None:
        """``buckets``: the flushed row's per-bucket counts (``len(BOUNDS) + 1``)."""
        errors = count if status >= 500 else 0.0
        self._grown.add(route)
        row = self.routes.get(route)
        if row is None:
            row = self.routes[route] = [0.0] * _R
        _add(row, count, errors, buckets)
        if service is not None and instance is not None:
            key = (service, instance)
            self._grown.add(key)
            irow = self.instances.get(key)
            if irow is None:
                irow = self.instances[key] = [0.0] * _I
            _add(irow, count, errors, buckets)

    def attempts(self, service: str, instance: str, status_class: int, count: int) -> None:
        """``status_class``: 2 for 2xx ..., 0 when no response came."""
        key = (service, instance)
        self._grown.add(key)
        row = self.instances.get(key)
        if row is None:
            row = self.instances[key] = [0.0] * _I
        row[_ATTEMPTS] += count
        if status_class in (0, 5):
            row[_FAILED] += count

    def snapshot(self, inflight: InFlight) -> dict[str, Any]:
        """What a worker publishes: its counters and its requests in flight (JSON-ready)."""
        now = self._clock()
        if now - self._pruned >= FORGET:
            grown = self._grown
            self.routes = {k: row for k, row in self.routes.items() if k in grown}
            self.instances = {k: row for k, row in self.instances.items() if k in grown}
            self._grown = set()
            self._pruned = now
        return {
            "since": self.since,
            "routes": self.routes,
            "instances": [[s, i, row] for (s, i), row in self.instances.items()],
            "inflight": {
                "routes": inflight.routes,
                "instances": [[s, i, n] for (s, i), n in inflight.instances.items()],
            },
        }


def _add(row: list[float], count: float, errors: float, buckets: list[float]) -> None:
    row[0] += count
    row[1] += errors
    for index, value in enumerate(buckets):
        if value:
            row[2 + index] += value


# -- several workers --------------------------------------------------------------------------
def publish(directory: str, worker_pid: int, snapshot: Mapping[str, Any]) -> None:
    """Write this worker's snapshot where the management worker reads it (atomically: a
    reader sees the old file or the new one, never half of one)."""
    path = Path(directory) / f"{FILE_PREFIX}{worker_pid}.json"
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(snapshot, separators=(",", ":")))
    os.replace(partial, path)


def read_peers(directory: str, own_pid: int) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The other workers' latest snapshots, by pid. A file that cannot be read now (being
    replaced, or its worker gone) is skipped: its worker's next sample counts what it missed."""
    for path in Path(directory).glob(f"{FILE_PREFIX}*.json"):
        pid = path.stem.removeprefix(FILE_PREFIX)
        if pid == str(own_pid):
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            yield pid, data


# -- the rings --------------------------------------------------------------------------------
class _Ring:
    """SLOTS rows of one width; a row belongs to an absolute slot number and is zeroed when
    its position is reused for a later slot."""

    __slots__ = ("_ids", "_rows", "_width")

    def __init__(self, width: int) -> None:
        self._width = width
        self._rows: list[list[float] | None] = [None] * SLOTS
        self._ids = [-1] * SLOTS

    def add(self, slot: int, delta: list[float]) -> None:
        position = slot % SLOTS
        row = self._rows[position]
        if row is None or self._ids[position] != slot:
            row = self._rows[position] = [0.0] * self._width
            self._ids[position] = slot
        for index, value in enumerate(delta):
            if value:
                row[index] += value

    def window(self, slot: int, slots: int) -> list[float]:
        """The sum of the ``slots`` slots ending at ``slot`` (the current one included)."""
        rows = [
            row
            for row, ident in zip(self._rows, self._ids, strict=True)
            if row is not None and slot - slots < ident <= slot
        ]
        if not rows:
            return [0.0] * self._width
        return [sum(column) for column in zip(*rows, strict=True)]

    def row(self, slot: int) -> list[float] | None:
        position = slot % SLOTS
        return self._rows[position] if self._ids[position] == slot else None

    def idle(self, slot: int) -> bool:
        """No slot of the last five minutes holds anything."""
        return all(ident <= slot - SLOTS for ident in self._ids)


def quantile(q: float, buckets: Iterable[float]) -> float | None:
    """The ``q`` quantile of a latency histogram given as per-bucket counts (``BOUNDS``, then
    +Inf), in seconds; None without observations. Linear within the bucket it falls in;
    above the last bound, the last bound."""
    counts = list(buckets)
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index >= len(BOUNDS):
                return BOUNDS[-1]
            lower = BOUNDS[index - 1] if index else 0.0
            upper = BOUNDS[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return BOUNDS[-1]


class LiveStats:
    """The management worker's rings over every worker's counters. ``clock``: wall seconds
    (slots are aligned to the epoch, so every series' timestamps mean the same moment)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._previous: dict[str, Mapping[str, Any]] = {}
        self._routes: dict[str, _Ring] = {}
        self._instances: dict[InstanceKey, _Ring] = {}
        self._total = _Ring(_R)
        self._inflight = InFlight()
        # When these rings began: the first sample's counts run from here.
        self._started: float | None = clock()
        self.sampled_at: float | None = None
        self._seen: dict[str, float] = {}
        # Per slot, from when its counts run: the sample before its first one (a sample
        # carries the growth since the previous sample, which may lie in the slot before).
        self._began: list[tuple[int, float]] = [(-1, 0.0)] * SLOTS

    def sample(self, snapshots: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Add each worker's growth since its previous snapshot (a worker seen for the first
        time counts from zero: it has just started)."""
        now = self._clock()
        if self._started is None:
            self._started = now
        slot = int(now // SLOT)
        if self._began[slot % SLOTS][0] != slot:
            previous = self.sampled_at if self.sampled_at is not None else self._started
            self._began[slot % SLOTS] = (slot, previous)
        inflight = InFlight()
        for source, snapshot in snapshots:
            before = self._previous.get(source)
            self._previous[source] = _copied(snapshot)
            self._seen[source] = now
            if before is None and _older(snapshot, self._started):
                # A worker that was counting long before these rings began (this management
                # worker was restarted): its history is not this second's. Baseline only.
                continue
            self._grow(slot, snapshot, before)
            seen = snapshot.get("inflight") or {}
            for route, count in (seen.get("routes") or {}).items():
                inflight.routes[route] = inflight.routes.get(route, 0) + int(count)
            for service, instance, count in seen.get("instances") or ():
                key = (service, instance)
                inflight.instances[key] = inflight.instances.get(key, 0) + int(count)
        self._inflight = inflight
        self.sampled_at = now
        self._forget_idle(slot)
        for source in [s for s, seen in self._seen.items() if now - seen > FORGET]:
            del self._seen[source]  # a worker gone for good (its file was removed)
            self._previous.pop(source, None)

    def _grow(
        self, slot: int, snapshot: Mapping[str, Any], before: Mapping[str, Any] | None
    ) -> None:
        old_routes: Mapping[str, list[float]] = before["routes"] if before else {}
        for route, row in (snapshot.get("routes") or {}).items():
            delta = _delta(row, old_routes.get(route))
            if delta is None:
                continue
            ring = self._routes.get(route)
            if ring is None:
                ring = self._routes[route] = _Ring(_R)
            ring.add(slot, delta)
            self._total.add(slot, delta)
        old_instances = {(s, i): r for s, i, r in before["instances"]} if before else {}
        for service, instance, row in snapshot.get("instances") or ():
            key = (service, instance)
            delta = _delta(row, old_instances.get(key))
            if delta is None:
                continue
            ring = self._instances.get(key)
            if ring is None:
                ring = self._instances[key] = _Ring(_I)
            ring.add(slot, delta)

    def _forget_idle(self, slot: int) -> None:
        for route in [r for r, ring in self._routes.items() if ring.idle(slot)]:
            del self._routes[route]
        for key in [k for k, ring in self._instances.items() if ring.idle(slot)]:
            del self._instances[key]

    # -- reading ------------------------------------------------------------------------------
    def totals(self) -> dict[str, Any]:
        slot = self._now()[0]
        out: dict[str, Any] = {"inFlight": self._inflight.total}
        for name, slots in WINDOWS:
            out[name] = _window(self._total.window(slot, slots), self._span(slot, slots))
        return out

    def route(self, route: str) -> dict[str, Any]:
        slot, elapsed = self._now()
        ring = self._routes.get(route)
        out: dict[str, Any] = {"inFlight": self._inflight.routes.get(route, 0)}
        for name, slots in WINDOWS:
            row = ring.window(slot, slots) if ring is not None else [0.0] * _R
            out[name] = _window(row, self._span(slot, slots))
        out["series"] = self._series(ring, slot, elapsed, full=False)
        return out

    def instance(self, service: str, instance: str) -> dict[str, Any]:
        slot = self._now()[0]
        ring = self._instances.get((service, instance))
        out: dict[str, Any] = {"inFlight": self._inflight.instances.get((service, instance), 0)}
        for name, slots in WINDOWS:
            row = ring.window(slot, slots) if ring is not None else [0.0] * _I
            window = _window(row, self._span(slot, slots))
            window["attempts"] = int(row[_ATTEMPTS])
            window["failedAttempts"] = int(row[_FAILED])
            out[name] = window
        return out

    def series(self) -> dict[str, Any]:
        """The whole gateway, one point per slot, oldest first (the current slot last)."""
        slot, elapsed = self._now()
        return self._series(self._total, slot, elapsed, full=True)

    def _series(
        self, ring: _Ring | None, slot: int, elapsed: float, *, full: bool
    ) -> dict[str, Any]:
        first = slot - SLOTS + 1
        if self._started is not None:
            first = max(first, int(self._started // SLOT))
        rates: list[float | None] = []
        errors: list[float | None] = []
        p50: list[float | None] = []
        p99: list[float | None] = []
        for each in range(first, slot + 1):
            row = ring.row(each) if ring is not None else None
            span = elapsed if each == slot else SLOT
            count = row[0] if row is not None else 0.0
            rates.append(round(count / span, 3) if span > 0 else None)
            errors.append(round(row[1] / count, 4) if row is not None and count else None)
            p50.append(_seconds(quantile(0.5, row[2:_R])) if row is not None else None)
            p99.append(_seconds(quantile(0.99, row[2:_R])) if row is not None else None)
        out: dict[str, Any] = {"rate": rates, "p99": p99}
        if full:
            out = {
                "interval": SLOT,
                "timestamps": [each * SLOT for each in range(first, slot + 1)],
                "rate": rates,
                "errorRate": errors,
                "p50": p50,
                "p99": p99,
            }
        return out

    def _now(self) -> tuple[int, float]:
        """The current slot and the seconds its counts cover so far."""
        now = self.sampled_at if self.sampled_at is not None else self._clock()
        slot = int(now // SLOT)
        return slot, max(now - self._begin(slot), 0.001)

    def _begin(self, slot: int) -> float:
        ident, began = self._began[slot % SLOTS]
        return began if ident == slot else slot * SLOT

    def _span(self, slot: int, slots: int) -> float:
        """Seconds a window of ``slots`` ending with the current one covers: from when its
        oldest slot's counts run (never before the first sample) to the last sample."""
        now = self.sampled_at if self.sampled_at is not None else self._clock()
        oldest = slot - slots + 1
        begin = self._begin(oldest)
        if self._started is not None:
            begin = max(begin, self._started)
        return max(now - begin, 0.001)


def _window(row: list[float], span: float) -> dict[str, Any]:
    requests, errors = row[0], row[1]
    return {
        "requests": int(requests),
        "errors": int(errors),
        "rate": round(requests / span, 3) if span > 0 else 0.0,
        "errorRate": round(errors / requests, 4) if requests else 0.0,
        "p50": _seconds(quantile(0.5, row[2:_R])),
        "p99": _seconds(quantile(0.99, row[2:_R])),
    }


def _seconds(value: float | None) -> float | None:
    """To the microsecond: the buckets say no more than that."""
    return round(value, 6) if value is not None else None


def _older(snapshot: Mapping[str, Any], started: float | None) -> bool:
    """The source started counting more than a slot before ``started``."""
    since = snapshot.get("since")
    return isinstance(since, int | float) and started is not None and since < started - SLOT


def _delta(row: list[float], before: list[float] | None) -> list[float] | None:
    """The growth of one cumulative row; None when it did not grow. A row that shrank
    belongs to a restarted source: all of it is new."""
    if before is None or len(before) != len(row):
        return list(row) if any(row) else None
    delta = [now - then for now, then in zip(row, before, strict=True)]
    if any(value < 0 for value in delta):
        return list(row)
    return delta if any(delta) else None


def _copied(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The counters as they were at this sample: the live dicts go on growing."""
    return {
        "routes": {route: list(row) for route, row in (snapshot.get("routes") or {}).items()},
        "instances": [[s, i, list(row)] for s, i, row in snapshot.get("instances") or ()],
    }
