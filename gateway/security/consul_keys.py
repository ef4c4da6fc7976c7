"""API key sets kept in Consul KV: one blocking watch per key a route names (``ApiKey``'s
``consul-key``), so an added or revoked key applies within a watch's wake-up, without a reload.

The watch is discovery's KV watch (the one the KV route document uses). Each change is parsed
as a whole: a malformed document is logged and the previous set stays (last-known-good, as
for the KV routes); a deleted key leaves an empty set — nobody passes — since deleting the
keys is how an operator revokes them all. Until the first read a route's set is None (its
filter answers 503), and the gateway's readiness waits for every set to be read.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Collection

from discovery.consul.client import ConsulClient
from discovery.consul.kv import kv_watch
from discovery.consul.watch import BlockingWatch, WatchPolicy
from gateway.errors import ConfigError
from gateway.security.api_keys import ApiKeySet, parse_api_keys

log = logging.getLogger("meshgate.security")


class LiveKeySet:
    """One Consul key's set, as the last good read left it (a ``KeySetView``)."""

    __slots__ = ("current", "error", "key")

    def __init__(self, key: str) -> None:
        self.key = key
        self.current: ApiKeySet | None = None
        self.error: str | None = None  # why the last document was refused, if it was

    @property
    def source(self) -> str:
        return f"consul:{self.key}"

    def apply(self, data: bytes | None) -> None:
        """A watch's read: the key's value, or None when the key does not exist."""
        if data is None:
            if self.current is not None and len(self.current):
                log.warning("API keys %s: the key was deleted; no API key passes", self.source)
            self.current = ApiKeySet({}, self.source)
            self.error = None
            return
        try:
            keys = parse_api_keys(data.decode("utf-8"), self.source)
        except UnicodeDecodeError as exc:
            self._refuse(f"{self.source}: not UTF-8 text ({exc.reason})")
            return
        except ConfigError as exc:
            self._refuse(str(exc))
            return
        self.current = keys
        self.error = None
        log.info("API keys %s applied: %d keys", self.source, len(keys))

    def _refuse(self, error: str) -> None:
        self.error = error
        kept = "keeping the previous keys" if self.current is not None else "none loaded yet"
        log.error("API keys refused, %s: %s", kept, error)


class ConsulKeySets:
    """The watched key sets (an ``ApiKeySources``). Routes ask for a key while they are built;
    watches run from ``start`` (or from the request, once started) until ``retain`` finds no
    route using the key, or ``stop``."""

    def __init__(
        self, *, policy: WatchPolicy | None = None, rng: random.Random | None = None
    ) -> None:
        self._policy = policy
        self._rng = rng
        self._client: ConsulClient | None = None
        self._sets: dict[str, LiveKeySet] = {}
        self._watches: dict[str, BlockingWatch[bytes | None]] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    def live(self, key: str) -> LiveKeySet:
        found = self._sets.get(key)
        if found is None:
            found = self._sets[key] = LiveKeySet(key)
            if self._client is not None:
                self._watch(found)
        return found

    @property
    def loaded(self) -> bool:
        """Every set routes use has been read once (readiness waits for it)."""
        return all(s.current is not None for s in self._sets.values())

    def sets(self) -> dict[str, LiveKeySet]:
        return dict(self._sets)

    def start(self, client: ConsulClient) -> None:
        self._client = client
        for live in self._sets.values():
            if live.key not in self._watches:
                self._watch(live)

    def _watch(self, live: LiveKeySet) -> None:
        assert self._client is not None
        watch = kv_watch(self._client, live.key, live.apply, policy=self._policy, rng=self._rng)
        self._watches[live.key] = watch
        watch.start()

    def retain(self, keys: Collection[str]) -> None:
        """Forget the sets no route uses any more (``keys``: those the routes use now), and
        stop their watches."""
        for key in [k for k in self._sets if k not in keys]:
            del self._sets[key]
            watch = self._watches.pop(key, None)
            if watch is not None:
                task = asyncio.get_running_loop().create_task(watch.stop())
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)

    async def stop(self) -> None:
        watches, self._watches = list(self._watches.values()), {}
        self._client = None
        for watch in watches:
            await watch.stop()
        for task in list(self._stopping):
            await task
