"""The discovery contract shared by the gateway and any in-process mesh client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from discovery.instance import ServiceInstance


class ServiceRegistry(Protocol):
    """A registry answers from a local snapshot: ``instances`` is called on the request path and
    must not block or await. Implementations that watch a remote source (Consul) refresh the
    snapshot in the background and keep the last good one when the source is unreachable."""

    def instances(self, service: str) -> Sequence[ServiceInstance]:
        """Healthy instances of ``service`` (empty when unknown or none are healthy)."""
        ...

    def services(self) -> Sequence[str]:
        """Names of every service the registry knows."""
        ...

    @property
    def ready(self) -> bool:
        """True once the first snapshot has loaded (readiness waits for it)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
