"""What predicate and filter factories may use while building: injected time and randomness,
limits from settings, and shared per-table state (weight groups)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.exchange import Exchange


class WeightGroups:
    """SCG's Weight predicate: per request, one route of each group is chosen at random in
    proportion to the weights, and only that route's Weight predicate matches.

    The choice is made lazily (only when a Weight predicate is evaluated) and cached on the
    exchange so every route of the group sees the same choice.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._groups: dict[str, list[tuple[str, int]]] = {}
        self._cumulative: dict[str, tuple[list[float], list[str]]] = {}

    def register(self, group: str, route_id: str, weight: int) -> None:
        self._groups.setdefault(group, []).append((route_id, weight))
        self._cumulative.pop(group, None)

    def _table(self, group: str) -> tuple[list[float], list[str]]:
        table = self._cumulative.get(group)
        if table is None:
            members = self._groups.get(group, [])
            total = sum(w for _, w in members) or 1
            bounds: list[float] = []
            acc = 0.0
            for _, w in members:
                acc += w / total
                bounds.append(acc)
            table = (bounds, [rid for rid, _ in members])
            self._cumulative[group] = table
        return table

    def chosen(self, group: str, exchange: Exchange) -> str | None:
        choices: dict[str, str | None] = exchange.attributes.setdefault("weight_choices", {})
        if group in choices:
            return choices[group]
        bounds, ids = self._table(group)
        pick: str | None = None
        if ids:
            r = self._rng.random()
            pick = ids[-1]
            for bound, rid in zip(bounds, ids, strict=True):
                if r < bound:
                    pick = rid
                    break
        choices[group] = pick
        return pick


@dataclass(slots=True)
class BuildContext:
    """Handed to every factory. ``route_id`` is the route being built (Weight needs it)."""

    rng: random.Random = field(default_factory=random.Random)
    now: Callable[[], float] = time.time
    route_id: str = ""
    weights: WeightGroups = field(default_factory=lambda: WeightGroups(random.Random()))
    known_services: frozenset[str] = frozenset()
    # The gateway's per-service resilience state (a ``ServiceRuntimes``), for filters that need
    # it (Retry, CircuitBreaker); None when only validating a file.
    runtimes: Any = None
    # The metadata of the route being built (breaker settings, timeouts).
    metadata: Mapping[str, Any] = field(default_factory=dict)
