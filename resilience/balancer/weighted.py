"""Smooth weighted round-robin (nginx's algorithm).

Each pick adds every candidate's weight to its current weight, picks the largest, and subtracts
the total weight from the winner. Over a cycle of ``sum(weights)`` picks each candidate gets
exactly its weight, and the picks are interleaved (5/1/1 gives a a b a c a a, not a a a a a b c),
so a heavy instance never takes a burst of consecutive requests.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from resilience.endpoint import E


class WeightedRoundRobin:
    def __init__(self) -> None:
        # Current weights are keyed by instance id, not list position, so an instance keeps
        # its place in the cycle when others join or leave between calls.
        self._ids: tuple[str, ...] = ()
        self._current: dict[str, int] = {}
        self._next = 0  # plain round-robin position, used only when no weight is positive

    def choose(self, candidates: Sequence[E], key: Hashable | None = None) -> E | None:
        if not candidates:
            return None
        ids = tuple(candidate.instance_id for candidate in candidates)
        if ids != self._ids:
            # The set changed: newcomers start at 0 and departed instances' state is dropped,
            # so the dict tracks the live set instead of every instance ever seen.
            previous = self._current
            self._current = {instance_id: previous.get(instance_id, 0) for instance_id in ids}
            self._ids = ids

        current = self._current
        best: E | None = None
        best_current = 0
        total = 0
        for candidate in candidates:
            weight = candidate.weight
            if weight <= 0:
                continue  # drained / zero-weight instances only serve when nothing else can
            total += weight
            value = current[candidate.instance_id] + weight
            current[candidate.instance_id] = value
            if best is None or value > best_current:
                best, best_current = candidate, value

        if best is None:
            # Every weight is <= 0: better to spread load evenly than to refuse to route.
            index = self._next % len(candidates)
            self._next += 1
            return candidates[index]
        current[best.instance_id] = best_current - total
        return best
