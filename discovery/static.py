"""The embedded registry: instances listed in configuration, no external system needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from discovery.instance import ServiceInstance


class StaticRegistry:
    def __init__(self, services: Mapping[str, Sequence[ServiceInstance]] | None = None) -> None:
        self._services: dict[str, tuple[ServiceInstance, ...]] = {}
        self.replace(services or {})

    def replace(self, services: Mapping[str, Sequence[ServiceInstance]]) -> None:
        """Swap the whole snapshot at once (a reload never shows a half-updated registry)."""
        self._services = {name: tuple(insts) for name, insts in services.items()}

    def has(self, service: str) -> bool:
        return service in self._services

    def instances(self, service: str) -> Sequence[ServiceInstance]:
        return self._services.get(service, ())

    def services(self) -> Sequence[str]:
        return sorted(self._services)

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
