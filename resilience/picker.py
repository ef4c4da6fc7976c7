"""Choosing the instance for one attempt: the registry's snapshot, narrowed to the call's
gray-release lane (``resilience.lanes``: stable when it asks for none), minus ejected instances,
minus those this call already tried (when anywhere new is left), minus those at their
concurrency limit, then the balancer's pick.

Called on every attempt, so it is one synchronous method with no allocation beyond the
filtered lists it needs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Sequence
from typing import Generic

from resilience.balancer.base import LoadBalancer
from resilience.endpoint import L
from resilience.errors import NoInstanceAvailable, ServiceOverloaded
from resilience.lanes import STABLE, LaneIndex, NoLaneInstance
from resilience.runtime import ServiceRuntime


class InstancePicker(Generic[L]):
    __slots__ = (
        "_available",
        "_balancer",
        "_index",
        "_instances",
        "_per_instance",
        "_runtime",
        "_strict",
        "service",
    )

    def __init__(
        self,
        service: str,
        instances: Callable[[str], Sequence[L]],
        runtime: ServiceRuntime,
        balancer: LoadBalancer,
        per_instance: int | None = None,
        *,
        strict_lanes: bool = False,
    ) -> None:
        """``instances(service)`` answers from the registry's local snapshot (never blocks);
        ``per_instance`` caps calls in flight to one instance (the runtime then counts them);
        ``strict_lanes``: a call whose lane has no instance is refused (``NoLaneInstance``)
        instead of falling back to stable."""
        self.service = service
        self._instances = instances
        self._runtime = runtime
        self._available = runtime.outlier.available
        self._balancer = balancer
        self._per_instance = per_instance
        self._strict = strict_lanes
        self._index: LaneIndex[L] = LaneIndex(())
        if per_instance is not None:
            runtime.track_active = True

    def count(self) -> int:
        """How many instances the service has now (ejected ones included)."""
        return len(self._instances(self.service))

    def pick(self, tried: set[str] | None, key: Hashable | None, lane: str | None = None) -> L:
        """The instance for the next attempt. ``tried``, when the call keeps one (it retries or
        hedges), holds the instances earlier attempts went to; the pick is added to it, so
        the next attempt goes somewhere new when anywhere new is left. ``lane``: the call's
        lane (None: stable); the pick's own ``lane`` says which one it came from (stable
        after a fallback)."""
        instances = self._instances(self.service)
        index = self._index
        if index.snapshot is not instances:
            # Registries hand back the same snapshot object until it changes: group it by
            # lane once per change, not per call.
            index = self._index = LaneIndex(instances)
        if index.laned or (lane is not None and lane != STABLE):
            try:
                instances = index.choose(lane, self._strict)
            except NoLaneInstance:
                raise NoLaneInstance(
                    f"no instance of service {self.service!r} in lane {lane!r}"
                ) from None
        candidates = self._available(instances)
        if tried:
            fresh = [i for i in candidates if i.instance_id not in tried]
            if fresh:
                candidates = fresh
        limit = self._per_instance
        if limit is not None and candidates:
            count = self._runtime.active.count
            candidates = [i for i in candidates if count(i.instance_id) < limit]
            if not candidates:
                raise ServiceOverloaded(f"every instance of {self.service!r} is at its limit")
        instance = self._balancer.choose(candidates, key)
        if instance is None:
            raise NoInstanceAvailable(f"no available instance of service {self.service!r}")
        if tried is not None:
            tried.add(instance.instance_id)
        return instance

    def preview(self, key: Hashable | None, lane: str | None = None) -> L:
        """The instance ``pick`` would choose now for a call that tried nothing yet, moving no
        state: a copy of the balancer chooses (its position, weights and generator copied;
        in-flight counts as they are), so the next real call gets the same answer. Raises as
        ``pick`` does."""
        balancer = self._balancer
        # Swapped for one synchronous call: nothing else runs on this loop meanwhile.
        self._balancer = copy.deepcopy(balancer)
        try:
            return self.pick(None, key, lane)
        finally:
            self._balancer = balancer
