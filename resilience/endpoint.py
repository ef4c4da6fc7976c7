"""What the call path may read about an upstream instance, without importing discovery.

``resilience`` is the bottom layer: depending on ``discovery`` or ``gateway`` would invert the
layering. Balancers, outlier detection and the instance picker accept anything of this shape,
which ``discovery.ServiceInstance`` (a frozen dataclass with a ``zone`` property) satisfies
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
