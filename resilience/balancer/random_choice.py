"""Uniform random choice: no state, so nothing to reset when the candidate list changes."""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


class RandomChoice:
    def __init__(self, rng: random.Random | None = None) -> None:
        # Injected so tests are deterministic; a private Random, never the module-global one.
        self._rng = rng or random.Random()

    def choose(self, candidates: Sequence[T], key: Hashable | None = None) -> T | None:
        if not candidates:
            return None
        return candidates[self._rng.randrange(len(candidates))]
