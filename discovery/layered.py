"""Two registries as one: services listed in configuration (static) are answered from there,
every other service from the dynamic registry (Consul). A route file can pin a service to fixed
addresses while the rest of the mesh is discovered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

    def known_instances(self, service: str) -> Sequence[ServiceInstance]:
        if self.static.has(service):
            return self.static.instances(service)
        return self.dynamic.known_instances(service)

    def describe(self) -> list[dict[str, Any]]:
        """Every service in ``services()`` order, from whichever registry answers for it; a
        service the dynamic side lists but does not watch yet says so; services watched on
        demand but not (yet) listed come last."""
        static = {view["service"]: view for view in self.static.describe()}
        dynamic = {view["service"]: view for view in self.dynamic.describe()}
        out: list[dict[str, Any]] = []
        for name in self.services():
            if name in static:
                out.append(static[name])
            elif name in dynamic:
                out.append(dynamic.pop(name))
            else:
                out.append({"service": name, "source": "consul", "watched": False})
        out.extend(view for name, view in dynamic.items() if name not in static)
        return out

    def status(self) -> dict[str, Any]:
        return self.dynamic.status()

    @property
    def ready(self) -> bool:
        return self.dynamic.ready

    async def start(self) -> None:
        await self.dynamic.start()

    async def stop(self) -> None:
        await self.dynamic.stop()
