"""Passive outlier detection, after Envoy's: instances that keep failing real requests are
taken out of rotation for a while, longer each time they offend.

One ``OutlierDetector`` per service. It only learns from the results the caller reports; it
never probes (active health checking is a separate concern).

Choices where Envoy leaves room or differs:

* Decay of the ejection count: for every full ``base_ejection`` period an instance stays in
  rotation after re-admission, its ejection count drops by one (as Envoy does per interval),
  so an instance that misbehaved once long ago starts again from a short ejection. The decay
  is applied lazily, when the count is next needed, so nothing runs on a timer.
* A service with a single instance never has it ejected: there is nobody to fail over to,
  and ejecting it would only turn its occasional failures into certain ones.
* At least one instance may always be ejected (when there are two or more), even when
  ``max_ejection_percent`` of ``total`` rounds down to zero: one bad instance among three
  should not be kept in rotation just because 33 % > 20 %.
* Results reported for an instance while it is ejected (stragglers that were in flight, or
  traffic sent to it in panic mode) are ignored: they neither extend nor end its ejection.
* When the percent cap stops an ejection, the instance keeps its failure streak, so its next
  failure tries again and succeeds as soon as room frees up.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from resilience.clock import Clock
from resilience.endpoint import E


@dataclass(frozen=True)
class OutlierPolicy:
    consecutive_failures: int = 5
    base_ejection: float = 30.0
    max_ejection: float = 300.0
    max_ejection_percent: float = 50.0
    panic_threshold: float = 50.0

    def __post_init__(self) -> None:
        if self.consecutive_failures < 1:
            raise ValueError("consecutive_failures must be at least 1")
        if self.base_ejection <= 0:
            # The decay divides by it, and a zero ejection would be no ejection at all.
            raise ValueError("base_ejection must be positive")
        if self.max_ejection < self.base_ejection:
            raise ValueError("max_ejection must be at least base_ejection")
        if not 0 <= self.max_ejection_percent <= 100:
            raise ValueError("max_ejection_percent must be within 0..100")
        if not 0 <= self.panic_threshold <= 100:
            raise ValueError("panic_threshold must be within 0..100")


class _Instance:
    """Mutable per-instance bookkeeping; slots because there is one per instance and the
    fields are touched on every reported result."""

    __slots__ = ("consecutive_failures", "ejected_until", "ejection_count", "healthy_since")

    def __init__(self) -> None:
        self.consecutive_failures = 0
        self.ejection_count = 0
        self.ejected_until: float | None = None  # monotonic
        # When the instance was last re-admitted (monotonic), the start of its decay; None
        # while the ejection count has nothing to decay.
        self.healthy_since: float | None = None


class OutlierDetector:
    def __init__(self, policy: OutlierPolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock
        self._instances: dict[str, _Instance] = {}
        # The currently ejected instances (id -> monotonic end of ejection), kept apart from
        # ``_instances`` so that ``available`` can tell "nothing ejected" from one dict check.
        self._ejected: dict[str, float] = {}
        # The earliest end of ejection in ``_ejected``, so that ``available`` scans for
        # re-admissions only when one is actually due, not on every request.
        self._next_readmission = math.inf

    def record(self, instance_id: str, ok: bool, total: int) -> bool:
        """Report the result of one request to ``instance_id``; ``total`` is how many instances
        the service has right now. Returns True when this result ejected the instance."""
        inst = self._instances.get(instance_id)
        if inst is None:
            if ok:
                # The overwhelmingly common case: nothing to remember about a healthy instance.
                return False
            inst = self._instances[instance_id] = _Instance()
        now = self._clock.monotonic()
        if inst.ejected_until is not None:
            if now < inst.ejected_until:
                return False
            self._readmit(instance_id, inst)
        if ok:
            inst.consecutive_failures = 0
            return False
        inst.consecutive_failures += 1
        if inst.consecutive_failures < self._policy.consecutive_failures:
            return False
        if not self._may_eject(total, now):
            return False
        self._decay(inst, now)
        inst.ejection_count += 1
        duration = min(self._policy.max_ejection, self._policy.base_ejection * inst.ejection_count)
        until = now + duration
        inst.ejected_until = until
        inst.healthy_since = None
        # A fresh streak after re-admission: it has to earn its next ejection from scratch.
        inst.consecutive_failures = 0
        self._ejected[instance_id] = until
        self._next_readmission = min(self._next_readmission, until)
        return True

    def available(self, candidates: Sequence[E]) -> Sequence[E]:
        """The candidates that are not ejected, or all of them in panic (when fewer than
        ``panic_threshold`` percent would remain: better to try everyone than to fail
        everything). Runs on every request, so when nothing is ejected it returns
        ``candidates`` itself."""
        if not self._ejected:
            return candidates
        self._readmit_due(self._clock.monotonic())
        ejected = self._ejected
        if not ejected:
            return candidates
        kept = [c for c in candidates if c.instance_id not in ejected]
        if len(kept) == len(candidates):
            return candidates
        if len(kept) * 100 < self._policy.panic_threshold * len(candidates):
            return candidates
        return kept

    def ejected(self) -> dict[str, float]:
        """Currently ejected instances and the seconds each has left."""
        now = self._clock.monotonic()
        self._readmit_due(now)
        return {iid: until - now for iid, until in self._ejected.items()}

    def snapshot(self) -> dict[str, dict[str, int | float | None]]:
        """Per-instance state for an actuator; ``ejected_until`` is wall-clock (epoch seconds),
        since a monotonic timestamp means nothing outside this process."""
        now = self._clock.monotonic()
        wall = self._clock.time()
        self._readmit_due(now)
        out: dict[str, dict[str, int | float | None]] = {}
        for iid, inst in self._instances.items():
            self._decay(inst, now)
            until = inst.ejected_until
            out[iid] = {
                "consecutive_failures": inst.consecutive_failures,
                "ejection_count": inst.ejection_count,
                "ejected_until": None if until is None else wall + (until - now),
            }
        return out

    def retain(self, instance_ids: Collection[str]) -> None:
        """Forget instances that are no longer part of the service (the caller knows the
        membership), so state does not pile up as instances come and go and departed ones
        do not count against ``max_ejection_percent``."""
        for iid in [iid for iid in self._instances if iid not in instance_ids]:
            del self._instances[iid]
            self._ejected.pop(iid, None)
        self._next_readmission = min(self._ejected.values(), default=math.inf)

    def _may_eject(self, total: int, now: float) -> bool:
        if total <= 1:
            return False
        self._readmit_due(now)
        count = len(self._ejected)
        if count == 0:
            return True
        return (count + 1) * 100 <= self._policy.max_ejection_percent * total

    def _readmit_due(self, now: float) -> None:
        if now < self._next_readmission:
            return
        for iid in [iid for iid, until in self._ejected.items() if until <= now]:
            self._readmit(iid, self._instances[iid])
        self._next_readmission = min(self._ejected.values(), default=math.inf)

    def _readmit(self, instance_id: str, inst: _Instance) -> None:
        # Forget the ejection but keep the count, so a repeat offender stays out longer. Decay
        # counts from when its time was up, not from whenever someone happened to notice.
        assert inst.ejected_until is not None
        inst.healthy_since = inst.ejected_until
        inst.ejected_until = None
        self._ejected.pop(instance_id, None)

    def _decay(self, inst: _Instance, now: float) -> None:
        if inst.healthy_since is None or inst.ejection_count == 0:
            return
        periods = int((now - inst.healthy_since) // self._policy.base_ejection)
        if periods <= 0:
            return
        inst.ejection_count = max(0, inst.ejection_count - periods)
        inst.healthy_since += periods * self._policy.base_ejection
