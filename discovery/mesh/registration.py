"""Self-registration for an aiohttp service: the gateway's own ``SelfRegistration`` (an HTTP
health check owned by the agent, the registration re-checked and redone if the agent loses it)
wrapped as an ``Application.cleanup_ctx``.

Shutdown order: aiohttp closes the listening socket before it runs any cleanup, so the
context's exit can only deregister after the fact. A service that wants callers to stop
picking it while it still accepts connections calls ``await registration.leave()`` first (from
its own shutdown path, before ``AppRunner.cleanup()``): deregister, then wait ``grace`` while
still serving. The exit is then a no-op.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from discovery.consul.client import ConsulClient
from discovery.consul.settings import ConsulSettings
from discovery.registration import Registration, SelfRegistration, default_service_id


class MeshRegistration:
    """Append to ``app.cleanup_ctx``: registers on start-up, deregisters on cleanup."""

    def __init__(
        self,
        registration: Registration,
        consul: ConsulSettings | None = None,
        *,
        grace: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        """``consul``: where the agent is (default: Consul's ``CONSUL_*`` variables);
        ``grace``: seconds ``leave`` keeps serving after deregistering."""
        self.registration = registration
        self._consul = consul
        self._grace = grace
        self._rng = rng
        self._self: SelfRegistration | None = None
        self._client: ConsulClient | None = None

    @property
    def registered(self) -> bool:
        return self._self is not None and self._self.registered

    async def __call__(self, app: web.Application) -> AsyncIterator[None]:
        # The agent client binds to the running loop: made here, not in __init__.
        self._client = ConsulClient(self._consul or ConsulSettings.from_env())
        self._self = SelfRegistration(self._client, self.registration, rng=self._rng)
        self._self.start()
        try:
            yield
        finally:
            await self._deregister()
            await self._client.close()
            self._client = None

    async def leave(self) -> None:
        """Deregister now and keep serving for ``grace`` seconds, so every watcher sees the
        instance go before its listener closes."""
        if self._self is None:
            return
        await self._deregister()
        if self._grace > 0:
            await asyncio.sleep(self._grace)

    async def _deregister(self) -> None:
        own, self._self = self._self, None
        if own is not None:
            await own.deregister()  # best effort: logs an agent it cannot reach


def registration_ctx(
    name: str,
    port: int,
    *,
    address: str = "127.0.0.1",
    health_path: str = "/health",
    service_id: str | None = None,
    tags: tuple[str, ...] = (),
    meta: Mapping[str, str] | None = None,
    check_interval: float = 10.0,
    check_timeout: float = 5.0,
    deregister_critical_after: float = 60.0,
    consul: ConsulSettings | None = None,
    grace: float = 2.0,
    rng: random.Random | None = None,
) -> MeshRegistration:
    """A service ``name`` at ``address:port`` (what callers connect to, and where the agent
    checks ``health_path``), for ``app.cleanup_ctx.append(...)``. ``meta={"lane": "canary"}``
    puts the instance in a gray-release lane."""
    if not health_path.startswith("/"):
        raise ValueError(f"health_path must start with '/', got {health_path!r}")
    host = f"[{address}]" if ":" in address else address
    registration = Registration(
        name=name,
        service_id=service_id or default_service_id(name, address, port),
        address=address,
        port=port,
        check_url=f"http://{host}:{port}{health_path}",
        tags=tags,
        meta=dict(meta or {}),
        check_interval=check_interval,
        check_timeout=check_timeout,
        deregister_critical_after=deregister_critical_after,
        # A lost registration (an agent restart) is noticed and redone at the check's pace.
        resync_interval=check_interval,
    )
    return MeshRegistration(registration, consul, grace=grace, rng=rng)
