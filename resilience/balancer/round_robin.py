"""Round-robin over whatever candidate list the caller passes each time.

The position is a counter, not an index into a remembered list, so instances joining or leaving
between calls (discovery updates, ejections) never need a reset and never raise IndexError.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


class RoundRobin:
    def __init__(self, rng: random.Random | None = None) -> None:
        # Start at a random offset so N gateways don't all hit the first instance first.
        self._next = (rng or random.Random()).randrange(1 << 16)

    def choose(self, candidates: Sequence[T], key: Hashable | None = None) -> T | None:
        if not candidates:
            return None
        index = self._next % len(candidates)
        self._next += 1
        return candidates[index]
