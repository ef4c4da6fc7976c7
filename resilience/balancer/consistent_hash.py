"""Consistent hashing on a Ketama-style ring: the same key goes to the same instance, and a
membership change moves only the keys of the instance that joined or left (about 1/N of them).

Each instance owns ``vnodes`` points on a 64-bit ring; a key belongs to the first point at or
after its own hash. Many points per instance even out the arcs each instance owns. Points depend
only on the instance id, so two gateways that see the same instances agree on every key, and an
instance's points stay put when others come and go.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import math
from collections.abc import Hashable, Sequence
from typing import Any

from resilience.balancer.base import LoadBalancer
from resilience.endpoint import E

# Weight multiplies an instance's points, after dividing all weights by their gcd (so 100/100/100
# costs no more than 1/1/1). The cap bounds the ring a mistyped weight of 10_000 would build on
# the request path; beyond it, shares are only approximately proportional.
_MAX_WEIGHT_SCALE = 16


def _hash(data: bytes) -> int:
    # Not hash(): str hashes are salted per process, and gateways must agree with each other.
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _key_bytes(key: Hashable) -> bytes:
    if isinstance(key, bytes):
        return key
    return (key if isinstance(key, str) else str(key)).encode()


def _scales(weights: Sequence[int]) -> list[int]:
    """Points per instance, in units of ``vnodes``."""
    positive = [weight for weight in weights if weight > 0]
    if not positive:
        return [1] * len(weights)  # all drained: hash over all rather than refuse to route
    unit = math.gcd(*positive)
    return [min(weight // unit, _MAX_WEIGHT_SCALE) if weight > 0 else 0 for weight in weights]


class ConsistentHash:
    def __init__(self, fallback: LoadBalancer, vnodes: int = 160) -> None:
        if vnodes < 1:
            raise ValueError(f"consistent_hash needs vnodes >= 1, got {vnodes}")
        self._fallback = fallback
        self._vnodes = vnodes
        # Only the latest ring is kept: the candidate set changes rarely (discovery updates,
        # ejections), and an old set coming back costs one rebuild.
        self._ring_of: tuple[tuple[str, int], ...] | None = None
        self._points: list[int] = []
        self._owners: list[int] = []  # index into the candidate sequence the ring was built for

    def __deepcopy__(self, memo: dict[int, Any]) -> ConsistentHash:
        """A copy that chooses as this one would (``InstancePicker.preview``): the ring is
        shared, not copied (it is replaced on a rebuild, never changed in place, and can hold
        hundreds of thousands of points); the fallback's position is copied."""
        twin = ConsistentHash.__new__(ConsistentHash)
        twin._fallback = copy.deepcopy(self._fallback, memo)
        twin._vnodes = self._vnodes
        twin._ring_of = self._ring_of
        twin._points = self._points
        twin._owners = self._owners
        return twin

    def choose(self, candidates: Sequence[E], key: Hashable | None = None) -> E | None:
        if not candidates:
            return None
        if key is None:
            # No key (header absent, no cookie yet...): nothing to be sticky on.
            return self._fallback.choose(candidates)
        # Weights are part of the identity: a weight change must rebuild the ring. Equal tuples
        # mean the same ids in the same order, so ring owners can be list indexes.
        members = tuple((candidate.instance_id, candidate.weight) for candidate in candidates)
        if members != self._ring_of:
            self._build(members)
        point = bisect.bisect_left(self._points, _hash(_key_bytes(key)))
        if point == len(self._points):
            point = 0  # past the last point: wrap around the ring
        return candidates[self._owners[point]]

    def _build(self, members: tuple[tuple[str, int], ...]) -> None:
        scales = _scales([weight for _, weight in members])
        ring: list[tuple[int, str, int]] = []
        for index, ((instance_id, _), scale) in enumerate(zip(members, scales, strict=True)):
            for vnode in range(scale * self._vnodes):
                point = _hash(f"{instance_id}#{vnode}".encode())
                # The id breaks (astronomically rare) ties, so the ring does not depend on
                # the order discovery happened to list the instances in.
                ring.append((point, instance_id, index))
        ring.sort()
        self._points = [point for point, _, _ in ring]
        self._owners = [index for _, _, index in ring]
        self._ring_of = members
