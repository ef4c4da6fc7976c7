"""Least request by the power of N choices (Envoy's LEAST_REQUEST, default N = 2).

Scanning every candidate for the global minimum makes all gateways (and all concurrent picks
between count updates) pile onto the same instance. Sampling a few at random and taking the least
loaded of those avoids that herding yet still steers clear of overloaded instances: with two
choices the maximum load drops exponentially compared with pure random.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence

from resilience.active import ActiveRequests
from resilience.endpoint import E


class LeastRequest:
    def __init__(
        self, active: ActiveRequests, rng: random.Random | None = None, choices: int = 2
    ) -> None:
        if choices < 1:
            raise ValueError(f"least_request needs choices >= 1, got {choices}")
        self._active = active
        self._rng = rng or random.Random()
        self._choices = choices

    def choose(self, candidates: Sequence[E], key: Hashable | None = None) -> E | None:
        n = len(candidates)
        if n <= 1:
            return candidates[0] if candidates else None
        # Distinct samples: sampling one instance twice would waste a choice, and the busiest
        # instance could then "win" against itself.
        indexes = self._rng.sample(range(n), min(self._choices, n))
        best = candidates[indexes[0]]
        best_count = self._active.count(best.instance_id)
        for index in indexes[1:]:
            candidate = candidates[index]
            count = self._active.count(candidate.instance_id)
            if count < best_count:  # strict: ties go to the first sampled, which is random
                best, best_count = candidate, count
        return best
