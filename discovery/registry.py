"""The discovery contract shared by the gateway and any in-process mesh client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

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

    def known_instances(self, service: str) -> Sequence[ServiceInstance]:
        """What the snapshot holds for ``service`` now, without side effects (``instances``
        may start watching a service it was not asked about before): for metrics, views and
        trimming per-instance state to current members."""
        ...

    def describe(self) -> list[dict[str, Any]]:
        """One view per service it holds: instances, health, snapshot age and error (the
        actuator's ``/actuator/gateway/services``)."""
        ...

    def status(self) -> dict[str, Any]:
        """The source as a whole (address, snapshot age, error) for readiness details; empty
        for a source that can't be out of date."""
        ...

    @property
    def ready(self) -> bool:
        """True once the first snapshot has loaded (readiness waits for it)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
