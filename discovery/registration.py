"""Registering this process as a Consul service, and keeping it registered.

The agent owns the health check (an HTTP check on our readiness endpoint), so an instance that
stops answering leaves rotation without our help and is removed after
``deregister_critical_after``. We re-check the registration every ``resync_interval``: an agent
restarted without persistent state (or one that lost us) gets us back by itself.

Shutdown order matters to callers: deregister first, then wait ``grace`` while still serving,
so every watcher sees the instance leave before its listener closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from discovery.consul.client import ConsulClient
from discovery.errors import RegistryUnavailable

log = logging.getLogger("meshgate.registration")


@dataclass(frozen=True, slots=True)
class Registration:
    name: str
    service_id: str
    address: str
    port: int
    check_url: str
    tags: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)
    check_interval: float = 10.0
    check_timeout: float = 5.0
    deregister_critical_after: float = 60.0
    resync_interval: float = 10.0


def default_service_id(name: str, address: str, port: int) -> str:
    """Unique per process, host and port, and readable in the Consul UI."""
    return f"{name}-{socket.gethostname()}-{address}-{port}-{os.getpid()}"


def _duration(seconds: float) -> str:
    return f"{max(1, int(seconds * 1000))}ms"


class SelfRegistration:
    def __init__(
        self,
        client: ConsulClient,
        registration: Registration,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self.registration = registration
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self.registered = False
        self.last_error: str | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._keep_registered(), name="consul self-registration"
            )

    async def register(self) -> None:
        reg = self.registration
        await self._client.register(
            name=reg.name,
            service_id=reg.service_id,
            address=reg.address,
            port=reg.port,
            tags=reg.tags,
            meta=reg.meta,
            check={
                "HTTP": reg.check_url,
                "Interval": _duration(reg.check_interval),
                "Timeout": _duration(reg.check_timeout),
                "DeregisterCriticalServiceAfter": _duration(reg.deregister_critical_after),
            },
        )
        self.registered = True
        log.info("registered %s as %s at %s:%d", reg.name, reg.service_id, reg.address, reg.port)

    async def _keep_registered(self) -> None:
        failures = 0
        reg = self.registration
        while True:
            try:
                if not self.registered or not await self._client.agent_has_service(reg.service_id):
                    if self.registered:
                        log.warning(
                            "consul lost registration %s; registering again", reg.service_id
                        )
                    self.registered = False
                    await self.register()
                failures = 0
                self.last_error = None
                delay = reg.resync_interval
            except RegistryUnavailable as exc:
                failures += 1
                self.last_error = str(exc)
                if failures == 1:
                    log.warning("self-registration: %s; retrying", exc)
                delay = min(5.0, 0.2 * 2 ** (failures - 1))
            await asyncio.sleep(delay * (0.5 + self._rng.random() / 2))

    async def deregister(self) -> None:
        """Stop keeping the registration and remove it (best effort: the agent's
        deregister-critical timeout covers an agent we can't reach)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self._client.deregister(self.registration.service_id)
            log.info("deregistered %s", self.registration.service_id)
        except RegistryUnavailable as exc:
            log.warning("deregistration failed: %s", exc)
        self.registered = False
