"""What mirroring did, per route and mirror URI: how each copy ended, how each comparison came
out, and the last differences found — what ``GET /actuator/gateway/mirrors`` shows. The same
events go to the metrics (``MirrorEvents``), which sum them across workers; these counts are
this process's."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.mirror.compare import Difference, NotComparable
from gateway.mirror.spec import MirrorSpec

# How a mirrored copy ended (the ``outcome`` label).
SENT = "sent"  # the shadow answered (any status)
DROPPED_INFLIGHT = "dropped_inflight"  # GATEWAY_MIRROR_MAX_INFLIGHT copies were in flight
SKIPPED_BODY = "skipped_body"  # the body could not be copied whole (over the limit, cut off)
FAILED = "failed"  # no instance, connect or protocol error
TIMEOUT = "timeout"  # no complete answer within GATEWAY_MIRROR_TIMEOUT
OUTCOMES = (SENT, DROPPED_INFLIGHT, SKIPPED_BODY, FAILED, TIMEOUT)
# How a comparison came out (the ``result`` label).
EQUAL = "equal"
DIFFERING = "differing"
NOT_COMPARABLE = "not_comparable"
RESULTS = (EQUAL, DIFFERING, NOT_COMPARABLE)
# Differences kept per route and mirror.
KEPT_DIFFERENCES = 20

_CAMEL = {
    SENT: "sent",
    DROPPED_INFLIGHT: "droppedInflight",
    SKIPPED_BODY: "skippedBody",
    FAILED: "failed",
    TIMEOUT: "timeout",
}


class MirrorEvents(Protocol):
    """The metrics hook (``observability.metrics.Metrics`` meets it)."""

    def mirror_request(self, route: str, outcome: str) -> None: ...

    def mirror_comparison(self, route: str, result: str) -> None: ...


@dataclass(frozen=True, slots=True)
class DifferenceRecord:
    at: float  # wall clock
    method: str
    path: str
    difference: Difference

    def view(self) -> dict[str, Any]:
        diff = self.difference
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds"),
            "method": self.method,
            "path": self.path,
        }
        if diff.status is not None:
            out["status"] = {"primary": diff.status[0], "shadow": diff.status[1]}
        if diff.headers:
            out["headers"] = list(diff.headers)
        if diff.json_path is not None:
            out["body"] = {"jsonPath": diff.json_path}
        elif diff.byte_offset is not None:
            out["body"] = {"byteOffset": diff.byte_offset}
        return out


class MirrorStats:
    """One route's one mirror. ``spec`` is replaced when a reload changes the filter."""

    __slots__ = (
        "_events",
        "_now",
        "comparisons",
        "differences",
        "not_comparable",
        "requests",
        "route",
        "spec",
    )

    def __init__(
        self,
        route: str,
        spec: MirrorSpec,
        events: MirrorEvents | None,
        now: Callable[[], float],
    ) -> None:
        self.route = route
        self.spec = spec
        self._events = events
        self._now = now
        self.requests = dict.fromkeys(OUTCOMES, 0)
        self.comparisons = dict.fromkeys(RESULTS, 0)
        self.not_comparable: dict[str, int] = {}
        self.differences: deque[DifferenceRecord] = deque(maxlen=KEPT_DIFFERENCES)

    def request(self, outcome: str) -> None:
        self.requests[outcome] += 1
        if self._events is not None:
            self._events.mirror_request(self.route, outcome)

    def compared(self, method: str, path: str, difference: Difference) -> None:
        if difference.equal:
            self._result(EQUAL)
            return
        self.differences.append(DifferenceRecord(self._now(), method, path, difference))
        self._result(DIFFERING)

    def incomparable(self, why: NotComparable) -> None:
        self.not_comparable[why.key] = self.not_comparable.get(why.key, 0) + 1
        self._result(NOT_COMPARABLE)

    def _result(self, result: str) -> None:
        self.comparisons[result] += 1
        if self._events is not None:
            self._events.mirror_comparison(self.route, result)

    def view(self) -> dict[str, Any]:
        spec = self.spec
        out: dict[str, Any] = {
            "route": self.route,
            "uri": spec.uri.raw,
            "percent": spec.percent,
            "compare": spec.compare is not None,
            "requests": {_CAMEL[name]: count for name, count in self.requests.items()},
        }
        if spec.compare is not None:
            counts = self.comparisons
            out["comparisons"] = {
                "compared": counts[EQUAL] + counts[DIFFERING],
                "equal": counts[EQUAL],
                "differing": counts[DIFFERING],
                "notComparable": counts[NOT_COMPARABLE],
            }
            out["notComparable"] = dict(sorted(self.not_comparable.items()))
            out["ignoreHeaders"] = sorted(h.decode("latin-1") for h in spec.compare.ignore_headers)
            out["ignoreJsonPaths"] = [p.text for p in spec.compare.ignore_paths]
            out["differences"] = [record.view() for record in self.differences]
        return out
