"""Choosing the instance for one attempt: the registry's snapshot, minus ejected instances,
minus those this call already tried (when anywhere new is left), minus those at their
concurrency limit, then the balancer's pick.

Called on every attempt, so it is one synchronous method with no allocation beyond the
filtered lists it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Generic

from resilience.balancer.base import LoadBalancer
from resilience.endpoint import E
from resilience.errors import NoInstanceAvailable, ServiceOverloaded
from resilience.runtime import ServiceRuntime


class InstancePicker(Generic[E]):
    __slots__ = ("_available", "_balancer", "_instances", "_per_instance", "_runtime", "service")

    def __init__(
        self,
        service: str,
        instances: Callable[[str], Sequence[E]],
        runtime: ServiceRuntime,
        balancer: LoadBalancer,
        per_instance: int | None = None,
    ) -> None:
        """``instances(service)`` answers from the registry's local snapshot (never blocks);
        ``per_instance`` caps calls in flight to one instance (the runtime then counts them)."""
        self.service = service
        self._instances = instances
        self._runtime = runtime
        self._available = runtime.outlier.available
        self._balancer = balancer
        self._per_instance = per_instance
        if per_instance is not None:
            runtime.track_active = True

    def count(self) -> int:
        """How many instances the service has now (ejected ones included)."""
        return len(self._instances(self.service))

    def pick(self, tried: set[str] | None, key: Hashable | None) -> E:
        """The instance for the next attempt. ``tried``, when the call keeps one (it retries or
        hedges), holds the instances earlier attempts went to; the pick is added to it, so
        the next attempt goes somewhere new when anywhere new is left."""
        candidates = self._available(self._instances(self.service))
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
