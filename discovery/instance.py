"""One reachable endpoint of a service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ServiceInstance:
    service: str
    instance_id: str
    host: str
    port: int
    secure: bool = False
    weight: int = 1
    metadata: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        """``host[:port]`` as a Host header writes it: the port only when not the scheme's
        default, an IPv6 address in brackets."""
        default = 443 if self.secure else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def zone(self) -> str | None:
        return self.metadata.get("zone")
