"""Two registries as one: services listed in configuration (static) are answered from there,
every other service from the dynamic registry (Consul). A route file can pin a service to fixed
addresses while the rest of the mesh is discovered."""

from __future__ import annotations

from collections.abc import Sequence

from discovery.instance import ServiceInstance
from discovery.registry import ServiceRegistry
from discovery.static import StaticRegistry


class LayeredRegistry:
    def __init__(self, static: StaticRegistry, dynamic: ServiceRegistry) -> None:
        self.static = static
        self.dynamic = dynamic

    def instances(self, service: str) -> Sequence[ServiceInstance]:
        if self.static.has(service):
            return self.static.instances(service)
        return self.dynamic.instances(service)

    def services(self) -> Sequence[str]:
        return sorted({*self.static.services(), *self.dynamic.services()})

    @property
    def ready(self) -> bool:
        return self.dynamic.ready

    async def start(self) -> None:
        await self.dynamic.start()

    async def stop(self) -> None:
        await self.dynamic.stop()
