"""What balancers may read about an upstream instance, without importing discovery.

``resilience`` sits below ``discovery`` and ``gateway``; depending on them would invert the
layering. Instead balancers that need an instance's identity, weight or zone accept anything of
this shape, which ``discovery.ServiceInstance`` (a frozen dataclass with a ``zone`` property)
satisfies structurally.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol, TypeVar


class Endpoint(Protocol):
    @property
    def instance_id(self) -> str:
        """Stable across discovery refreshes; balancers key their state by it."""
        ...

    @property
    def weight(self) -> int:
        """Relative share of traffic; ``<= 0`` means "only if nothing else is left"."""
        ...

    @property
    def zone(self) -> str | None: ...


E = TypeVar("E", bound=Endpoint)


class EndpointBalancer(Protocol):
    """A load balancer that only promises to handle endpoints.

    ``balancer.base.LoadBalancer`` accepts candidates of any type, which a balancer reading
    ``weight`` or ``zone`` cannot honour, so mypy rightly refuses those as a ``LoadBalancer``.
    This is the contract they do meet. Every ``LoadBalancer`` (round-robin, random) meets it
    too, so it is what decorators and the factory accept and return; the gateway only ever
    passes service instances.
    """

    def choose(self, candidates: Sequence[E], key: Hashable | None = None) -> E | None: ...
