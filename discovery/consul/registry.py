"""Service discovery from Consul: one blocking watch per service in use, plus one of the catalog
when something needs the list of services (the discovery locator, tag routes).

``instances`` answers from the latest snapshot and never waits: it runs on every request. When
Consul cannot be reached the snapshot stays as it was (last-known-good) and its age grows,
visible in ``details`` and readiness, while the watches keep retrying by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from discovery.consul.client import ConsulClient
from discovery.consul.models import InstanceHealth, parse_entry, routable
from discovery.consul.settings import ConsulSettings
from discovery.consul.watch import BlockingWatch, WatchPolicy
from discovery.instance import ServiceInstance
from resilience.clock import Clock, SystemClock

log = logging.getLogger("meshgate.consul")

Catalog = Mapping[str, tuple[str, ...]]


class _ServiceView:
    __slots__ = ("entries", "healthy", "watch")

    def __init__(self, watch: BlockingWatch[list[Mapping[str, Any]]]) -> None:
        self.watch = watch
        self.entries: tuple[InstanceHealth, ...] = ()
        self.healthy: tuple[ServiceInstance, ...] = ()


class ConsulRegistry:
    def __init__(
        self,
        settings: ConsulSettings,
        *,
        watch_catalog: bool = False,
        on_catalog: Callable[[Catalog], None] | None = None,
        policy: WatchPolicy | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._policy = policy or WatchPolicy(wait=settings.wait)
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._client: ConsulClient | None = None
        self._views: dict[str, _ServiceView] = {}
        self._tracked: frozenset[str] = frozenset()
        self._demanded: set[str] = set()
        self._catalog: dict[str, tuple[str, ...]] = {}
        self._on_catalog = on_catalog
        self._catalog_watch: BlockingWatch[dict[str, tuple[str, ...]]] | None = None
        self._watch_catalog = watch_catalog
        self._started = False

    @property
    def client(self) -> ConsulClient | None:
        """The agent client, once started (shared with KV watches and self-registration)."""
        return self._client

    # -- ServiceRegistry -----------------------------------------------------------------------
    def instances(self, service: str) -> Sequence[ServiceInstance]:
        view = self._views.get(service)
        if view is None:
            # Not referenced by any route (an in-process caller, or a route added a moment
            # ago): watch it from now on; this request sees no instance yet.
            self._demanded.add(service)
            self._ensure_watch(service)
            return ()
        return view.healthy

    def known_instances(self, service: str) -> Sequence[ServiceInstance]:
        """Like ``instances`` but never starts a watch (for views such as metrics)."""
        view = self._views.get(service)
        return view.healthy if view is not None else ()

    def services(self) -> Sequence[str]:
        if self._watch_catalog:
            return sorted(name for name in self._catalog if name != "consul")
        return sorted(self._views)

    @property
    def ready(self) -> bool:
        """Every watch has loaded once. After that, an outage doesn't make us unready: the
        last-known-good snapshot keeps routing (readiness details show its age)."""
        if self._catalog_watch is not None and not self._catalog_watch.state.loaded:
            return False
        return all(
            view.watch.state.loaded for name, view in self._views.items() if name in self._tracked
        )

    async def start(self) -> None:
        self._client = ConsulClient(self.settings)
        self._started = True
        if self._watch_catalog:
            client = self._client
            self._catalog_watch = BlockingWatch(
                "consul catalog",
                client.catalog_services,
                self._catalog_changed,
                policy=self._policy,
                clock=self._clock,
                rng=self._rng,
            )
            self._catalog_watch.start()
        for name in self._tracked | self._demanded:
            self._ensure_watch(name)

    async def stop(self) -> None:
        self._started = False
        watches: list[BlockingWatch[Any]] = [v.watch for v in self._views.values()]
        if self._catalog_watch is not None:
            watches.append(self._catalog_watch)
        await asyncio.gather(*(w.stop() for w in watches))
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- what to watch -------------------------------------------------------------------------
    def track(self, services: Iterable[str]) -> None:
        """The services routes reference now: start watches for new ones, stop those no route
        (and no in-process caller) needs any more."""
        tracked = frozenset(services)
        self._tracked = tracked
        for name in tracked:
            self._ensure_watch(name)
        for name in list(self._views):
            if name not in tracked and name not in self._demanded:
                view = self._views.pop(name)
                if self._started:
                    asyncio.get_running_loop().create_task(view.watch.stop())

    def _ensure_watch(self, service: str) -> None:
        if service in self._views or self._client is None:
            return
        watch: BlockingWatch[list[Mapping[str, Any]]] = BlockingWatch(
            f"consul service {service!r}",
            partial(self._client.health_service, service),
            partial(self._service_changed, service),
            policy=self._policy,
            clock=self._clock,
            rng=self._rng,
        )
        self._views[service] = _ServiceView(watch)
        watch.start()

    async def wait_ready(self, timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.ready:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    # -- snapshots -----------------------------------------------------------------------------
    def _service_changed(self, service: str, entries: list[Mapping[str, Any]]) -> None:
        view = self._views.get(service)
        if view is None:
            return
        parsed = tuple(parse_entry(e) for e in entries)
        healthy = routable(parsed, self.settings.accept_warning)
        before = {i.instance_id for i in view.healthy}
        after = {i.instance_id for i in healthy}
        view.entries, view.healthy = parsed, healthy
        if before != after:
            log.info(
                "service %s: %d healthy of %d instances%s%s",
                service,
                len(healthy),
                len(parsed),
                f", joined {sorted(after - before)}" if after - before else "",
                f", left {sorted(before - after)}" if before - after else "",
            )

    def _catalog_changed(self, catalog: dict[str, tuple[str, ...]]) -> None:
        if catalog == self._catalog:
            return
        self._catalog = catalog
        if self._on_catalog is not None:
            self._on_catalog(self.catalog())

    def catalog(self) -> Catalog:
        """Service name → tags (the union over its instances), without Consul itself."""
        return {k: v for k, v in self._catalog.items() if k != "consul"}

    # -- views for readiness and the actuator ---------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Oldest snapshot age and the current error, for readiness details and logs."""
        now = self._clock.monotonic()
        watches: list[BlockingWatch[Any]] = [v.watch for v in self._views.values()]
        if self._catalog_watch is not None:
            watches.append(self._catalog_watch)
        ages = [w.state.age(now) for w in watches]
        errors = [w.state.last_error for w in watches if w.state.last_error]
        known = [a for a in ages if a is not None]
        return {
            "source": "consul",
            "address": self.settings.address,
            "watches": len(watches),
            "snapshotAgeSeconds": round(max(known), 3) if known else None,
            "error": errors[0] if errors else None,
        }

    def describe(self) -> list[dict[str, Any]]:
        now = self._clock.monotonic()
        out = []
        for name in sorted(self._views):
            view = self._views[name]
            state = view.watch.state
            age = state.age(now)
            out.append(
                {
                    "service": name,
                    "source": "consul",
                    "loaded": state.loaded,
                    "snapshotAgeSeconds": None if age is None else round(age, 3),
                    "error": state.last_error,
                    "healthy": len(view.healthy),
                    "instances": [
                        {
                            "instanceId": e.instance.instance_id,
                            "host": e.instance.host,
                            "port": e.instance.port,
                            "secure": e.instance.secure,
                            "health": e.status,
                            "routable": e.instance in view.healthy,
                            "node": e.node,
                            "weight": e.instance.weight,
                            "tags": list(e.instance.tags),
                            "metadata": dict(e.instance.metadata),
                            "checks": [
                                {"id": cid, "status": st, "output": out_}
                                for cid, st, out_ in e.checks
                            ],
                        }
                        for e in view.entries
                    ],
                }
            )
        return out
