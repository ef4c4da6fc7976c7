"""The embedded registry: instances listed in configuration, no external system needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from discovery.instance import ServiceInstance


class StaticRegistry:
    def __init__(self, services: Mapping[str, Sequence[ServiceInstance]] | None = None) -> None:
        self._services: dict[str, tuple[ServiceInstance, ...]] = {}
        self._names: dict[str, str] = {}  # casefolded id -> id as configured
        self.replace(services or {})

    def replace(self, services: Mapping[str, Sequence[ServiceInstance]]) -> None:
        """Swap the whole snapshot at once (a reload never shows a half-updated registry)."""
        self._services = {name: tuple(insts) for name, insts in services.items()}
        self._names = {name.casefold(): name for name in self._services}

    def has(self, service: str) -> bool:
        return service.casefold() in self._names

    def instances(self, service: str) -> Sequence[ServiceInstance]:
        # Service ids compare case-insensitively, as in Consul's catalog: ``lb://Orders-Svc``
        # reaches the service configured as ``orders-svc`` and the other way round.
        name = self._names.get(service.casefold())
        return self._services[name] if name is not None else ()

    def services(self) -> Sequence[str]:
        return sorted(self._services)

    def known_instances(self, service: str) -> Sequence[ServiceInstance]:
        return self.instances(service)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "service": name,
                "source": "static",
                "loaded": True,
                "snapshotAgeSeconds": None,
                "error": None,
                "healthy": len(instances),
                "instances": [
                    {
                        "instanceId": i.instance_id,
                        "host": i.host,
                        "port": i.port,
                        "secure": i.secure,
                        "health": "passing",
                        "routable": True,
                        "weight": i.weight,
                        "tags": list(i.tags),
                        "metadata": dict(i.metadata),
                    }
                    for i in instances
                ],
            }
            for name, instances in sorted(self._services.items())
        ]

    def status(self) -> dict[str, Any]:
        return {}

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
