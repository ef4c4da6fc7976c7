"""In-flight request counts per upstream instance.

The gateway brackets every upstream attempt with ``begin``/``end``; the least-request balancer
reads ``count``. One object is shared by both, so the balancer sees this process's real load
without any extra bookkeeping on its own hot path.
"""

from __future__ import annotations


class ActiveRequests:
    def __init__(self) -> None:
        # Only instances with requests in flight have a key: instances come and go with
        # discovery, and a dict that kept every id ever seen would grow without bound.
        self._counts: dict[str, int] = {}

    def begin(self, instance_id: str) -> None:
        self._counts[instance_id] = self._counts.get(instance_id, 0) + 1

    def end(self, instance_id: str) -> None:
        # An unmatched ``end`` (a bug elsewhere) must not drive the count negative: a negative
        # count would make the least-request balancer favour that instance forever.
        remaining = self._counts.get(instance_id, 0) - 1
        if remaining > 0:
            self._counts[instance_id] = remaining
        else:
            self._counts.pop(instance_id, None)

    def count(self, instance_id: str) -> int:
        return self._counts.get(instance_id, 0)

    def __len__(self) -> int:
        """Number of instances with requests in flight."""
        return len(self._counts)
