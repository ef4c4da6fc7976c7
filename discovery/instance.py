"""One reachable endpoint of a service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from discovery.lane import lane_of


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
    # A secure instance's TLS server name (SNI and the certificate's name) when it is not
    # ``host``: an instance registered by IP whose certificate names it by DNS name.
    tls_server_name: str | None = None
    # The gray-release lane, from ``metadata``/``tags`` (``discovery.lane``): computed once
    # here, since the picker and the request metrics read it on every request.
    lane: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lane", lane_of(self.metadata, self.tags))

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
