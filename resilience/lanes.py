"""Gray-release lanes: a named subset of a service's instances, chosen per call.

An instance's lane comes from its metadata (``discovery`` derives it); instances that name none
are the ``stable`` lane. A call that asks for a lane is balanced over that lane's instances
only; a call that asks for none goes to ``stable``, so unlaned traffic never reaches a canary.
When the lane asked for has no instance, the call falls back to ``stable`` (the caller sees it
in the picked instance's ``lane``) unless the caller is strict, which refuses instead.

``TrafficSplit`` is how a share of calls is sent to a lane: sticky by a key (a user id), with a
hash that is the same in every process and after every restart — never Python's salted
``hash()`` — or drawn from an injected rng. Both the gateway's filters and a plain Python
client use this module, so a user lands in the same lane whichever of them decides.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Generic

from resilience.endpoint import L
from resilience.errors import NoInstanceAvailable

STABLE = "stable"

# A split's resolution: a key falls in one of 10,000 buckets, so PERCENT may have two decimals.
BUCKETS = 10_000

# Lane names travel in W3C baggage and metric labels: a short token needing no escaping there.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def valid_lane(name: str) -> bool:
    """A lane name a route or an inbound ``baggage`` entry may use: 1-64 characters of
    letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit."""
    return _NAME.fullmatch(name) is not None


def split_bucket(lane: str, key: str) -> int:
    """The bucket (``0 <= b < BUCKETS``) that ``key`` falls in for a split into ``lane``.

    BLAKE2b of ``lane NUL key`` (UTF-8), first 8 bytes as a big-endian integer, modulo
    ``BUCKETS``: deterministic everywhere. The lane name salts it, so two lanes split on the
    same key take independent users; raising a lane's percentage only adds users to it."""
    data = f"{lane}\x00{key}".encode("utf-8", "surrogatepass")
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big") % BUCKETS


class NoLaneInstance(NoInstanceAvailable):
    """A strict call asked for a lane that has no instance now."""


@dataclass(frozen=True, slots=True)
class TrafficSplit:
    """``percent`` (0-100, two decimals count) of calls go to ``lane``, the rest to stable."""

    lane: str
    percent: float
    # Buckets below this are in the lane.
    threshold: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not valid_lane(self.lane):
            raise ValueError(f"{self.lane!r} is not a valid lane name")
        if not 0.0 <= self.percent <= 100.0:
            raise ValueError(f"percent must be between 0 and 100, got {self.percent}")
        object.__setattr__(self, "threshold", round(self.percent * (BUCKETS // 100)))

    def sticky(self, key: str | None) -> str:
        """The lane for a call keyed by ``key``: the same key, the same lane, everywhere. A
        call without a key (None or empty) goes to stable."""
        if not key:
            return STABLE
        return self.lane if split_bucket(self.lane, key) < self.threshold else STABLE

    def draw(self, rng: random.Random) -> str:
        """The lane for a call with no key: ``percent`` of draws are in the lane."""
        return self.lane if rng.random() * 100.0 < self.percent else STABLE


class LaneIndex(Generic[L]):
    """One registry snapshot's instances grouped by lane, built once per snapshot (the picker
    keeps it while the registry hands back the same snapshot object)."""

    __slots__ = ("_lanes", "laned", "snapshot")

    def __init__(self, snapshot: Sequence[L]) -> None:
        grouped: dict[str, list[L]] = {}
        for instance in snapshot:
            grouped.setdefault(instance.lane, []).append(instance)
        self.snapshot = snapshot
        # False when every instance is stable: a call without a lane then takes the snapshot
        # as it is, at no cost.
        self.laned = any(lane != STABLE for lane in grouped)
        self._lanes: dict[str, tuple[L, ...]] = {k: tuple(v) for k, v in grouped.items()}

    def choose(self, lane: str | None, strict: bool = False) -> Sequence[L]:
        """The instances a call asking for ``lane`` (None: stable) may go to: the lane's, or
        stable's when the lane has none, or ``NoLaneInstance`` when ``strict``."""
        lanes = self._lanes
        wanted = STABLE if lane is None else lane
        if wanted in lanes:
            return lanes[wanted]
        if wanted == STABLE:
            return ()
        if strict:
            raise NoLaneInstance(f"no instance in lane {wanted!r}")
        return lanes.get(STABLE, ())  # a fallback: off the common path

    def counts(self) -> dict[str, int]:
        """Instances per lane."""
        return {lane: len(members) for lane, members in sorted(self._lanes.items())}
