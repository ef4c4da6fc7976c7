"""What the management port reads of a running gateway: this protocol, not the gateway's
internals. ``app.Gateway`` meets it; a test can hand the actuator anything else that does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from discovery.registry import ServiceRegistry
from gateway.explain import Explainer
from gateway.mirror.sender import Mirrors
from gateway.observability.live import LiveStats
from gateway.observability.metrics import Metrics
from gateway.routing.manager import RouteManager
from gateway.routing.table import RouteTable
from gateway.settings import Settings
from resilience.runtime import ServiceRuntimes


@dataclass(frozen=True, slots=True)
class KvRead:
    """The KV route document as just read from Consul."""

    data: bytes | None  # None: the key does not exist (no KV routes)


class ManagementView(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def serving(self) -> bool:
        """Listening and not shutting down."""
        ...

    @property
    def discovery_ready(self) -> bool:
        """The first discovery snapshot (and KV route document, when configured) is in."""
        ...

    @property
    def table(self) -> RouteTable:
        """The live route table."""
        ...

    @property
    def routes(self) -> RouteManager:
        """Route sources: definitions, the API routes, the last reload error."""
        ...

    @property
    def registry(self) -> ServiceRegistry: ...

    @property
    def runtimes(self) -> ServiceRuntimes: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def live(self) -> LiveStats:
        """The live numbers' rings (every worker's counts)."""
        ...

    @property
    def explainer(self) -> Explainer:
        """The explain API over the live table."""
        ...

    @property
    def mirrors(self) -> Mirrors:
        """The Mirror filters' copies, comparisons and counts."""
        ...

    def membership(self) -> dict[str, Any]:
        """The KV route key's and self-registration's state, for readiness details (empty
        without Consul)."""
        ...

    async def read_kv(self) -> KvRead | None:
        """The KV route document now (None: no KV route source). Raises ConfigError."""
        ...

    def refresh(
        self,
        kv: KvRead | None = None,
        *,
        notify: bool = True,
        scope: Mapping[str, str] | None = None,
    ) -> str | None:
        """Reload routes; the error text when the new configuration was refused. ``scope``
        (SCG's refresh by metadata): replace only the routes whose metadata has all of these
        string values, keep the others as they run."""
        ...
