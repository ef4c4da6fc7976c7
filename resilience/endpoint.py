"""What the call path may read about an upstream instance, without importing discovery.

``resilience`` is the bottom layer: depending on ``discovery`` or ``gateway`` would invert the
layering. Balancers and outlier detection accept anything of this shape; the instance picker,
which groups instances by gray-release lane, anything of ``LanedEndpoint``'s.
``discovery.ServiceInstance`` (a frozen dataclass with ``zone`` and ``lane``) satisfies both
structurally.
"""

from __future__ import annotations

from typing import Protocol, TypeVar


class Endpoint(Protocol):
    @property
    def instance_id(self) -> str:
        """Stable across discovery refreshes; balancers and outlier detection key state by it."""
        ...

    @property
    def weight(self) -> int:
        """Relative share of traffic; ``<= 0`` means "only if nothing else is left"."""
        ...

    @property
    def zone(self) -> str | None: ...


E = TypeVar("E", bound=Endpoint)


class LanedEndpoint(Endpoint, Protocol):
    """An endpoint that belongs to a gray-release lane (``resilience.lanes``): what the
    instance picker groups a service's instances by."""

    @property
    def lane(self) -> str:
        """The lane's name; ``"stable"`` for an instance that names none."""
        ...


L = TypeVar("L", bound=LanedEndpoint)
