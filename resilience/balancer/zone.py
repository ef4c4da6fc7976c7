"""Zone-aware routing: keep traffic in the gateway's own zone while that zone can take it.

Cross-zone hops add latency and, in clouds, cost. But if only one or two local instances are
healthy, sending them the whole zone's share would overload them, so below ``min_local`` local
candidates the choice spills over to every zone.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from resilience.balancer.base import LoadBalancer
from resilience.endpoint import E


class ZonePreference:
    def __init__(self, inner: LoadBalancer, local_zone: str | None, min_local: int = 2) -> None:
        if min_local < 1:
            # 0 would "prefer" an empty local set and route nowhere.
            raise ValueError(f"zone preference needs min_local >= 1, got {min_local}")
        self._inner = inner
        self._local_zone = local_zone
        self._min_local = min_local

    def choose(self, candidates: Sequence[E], key: Hashable | None = None) -> E | None:
        zone = self._local_zone
        if zone is not None:
            local = [candidate for candidate in candidates if candidate.zone == zone]
            if len(local) >= self._min_local:
                return self._inner.choose(local, key)
        return self._inner.choose(candidates, key)
