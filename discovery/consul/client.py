"""The few Consul HTTP API calls meshgate needs, typed, over py-consul's asyncio client.

Every call is bounded (blocking reads by ``wait`` plus Consul's own wait/16 jitter plus a
margin) and every failure — connection refused, timeout, HTTP error, ACL denial — becomes
``RegistryUnavailable``: callers deal with one exception, at one edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
import consul
import consul.aio

from discovery.consul.settings import ConsulSettings
from discovery.errors import RegistryUnavailable

T = TypeVar("T")

# Time allowed on top of a blocking query's wait (Consul adds up to wait/16 itself).
_MARGIN = 5.0
# Non-blocking calls (register, deregister, reads without an index).
_CALL_TIMEOUT = 10.0


def _wait_param(wait: float) -> str:
    return f"{max(1, int(wait * 1000))}ms"


def _index(raw: Any) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


class ConsulClient:
    """Create inside a running event loop (the underlying aiohttp session binds to it)."""

    def __init__(self, settings: ConsulSettings) -> None:
        self.settings = settings
        verify: bool | str = settings.ca_file or settings.verify
        cert = (
            (settings.cert_file, settings.key_file)
            if settings.cert_file and settings.key_file
            else None
        )
        self._consul = consul.aio.Consul(
            host=settings.host,
            port=settings.port,
            token=settings.token,
            scheme=settings.scheme,
            dc=settings.datacenter,
            verify=verify,
            cert=cert,
        )

    async def close(self) -> None:
        await self._consul.close()

    async def _call(self, what: str, call: Awaitable[T], timeout: float) -> T:
        try:
            async with asyncio.timeout(timeout):
                return await call
        except TimeoutError as exc:
            raise RegistryUnavailable(f"consul {what}: no answer within {timeout:g}s") from exc
        except consul.ConsulException as exc:
            raise RegistryUnavailable(f"consul {what}: {exc or type(exc).__name__}") from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise RegistryUnavailable(f"consul {what}: {exc or type(exc).__name__}") from exc

    def _timeout(self, index: int, wait: float) -> float:
        return wait + wait / 16 + _MARGIN if index else _CALL_TIMEOUT

    # -- reads (blocking when ``index`` > 0) --------------------------------------------------
    async def health_service(
        self, service: str, index: int, wait: float
    ) -> tuple[int, list[Mapping[str, Any]]]:
        """Every instance of ``service`` with its node and checks (healthy or not: the caller
        decides what counts as healthy, and the actuator shows the rest)."""
        call = self._consul.health.service(
            service,
            index=index or None,
            wait=_wait_param(wait),
            tag=self.settings.tag,
            dc=self.settings.datacenter,
        )
        raw_index, nodes = await self._call(
            f"health of {service!r}", call, self._timeout(index, wait)
        )
        return _index(raw_index), list(nodes or [])

    async def catalog_services(
        self, index: int, wait: float
    ) -> tuple[int, dict[str, tuple[str, ...]]]:
        call = self._consul.catalog.services(
            index=index or None, wait=_wait_param(wait), dc=self.settings.datacenter
        )
        raw_index, services = await self._call("catalog", call, self._timeout(index, wait))
        catalog = {str(name): tuple(tags or ()) for name, tags in (services or {}).items()}
        return _index(raw_index), catalog

    async def kv_get(self, key: str, index: int, wait: float) -> tuple[int, bytes | None]:
        call = self._consul.kv.get(
            key, index=index or None, wait=_wait_param(wait), dc=self.settings.datacenter
        )
        raw_index, item = await self._call(f"key {key!r}", call, self._timeout(index, wait))
        value = item.get("Value") if item else None
        if isinstance(value, str):
            value = value.encode()
        return _index(raw_index), value

    # -- agent ----------------------------------------------------------------------------------
    async def register(
        self,
        *,
        name: str,
        service_id: str,
        address: str,
        port: int,
        tags: Sequence[str],
        meta: Mapping[str, str],
        check: Mapping[str, Any],
    ) -> None:
        call = self._consul.agent.service.register(
            name,
            service_id=service_id,
            address=address,
            port=port,
            tags=list(tags),
            meta=dict(meta),
            check=dict(check),
        )
        ok = await self._call(f"register {service_id!r}", call, _CALL_TIMEOUT)
        if not ok:
            raise RegistryUnavailable(f"consul register {service_id!r}: refused")

    async def deregister(self, service_id: str) -> None:
        call = self._consul.agent.service.deregister(service_id)
        await self._call(f"deregister {service_id!r}", call, _CALL_TIMEOUT)

    async def agent_has_service(self, service_id: str) -> bool:
        services = await self._call("agent services", self._consul.agent.services(), _CALL_TIMEOUT)
        return service_id in (services or {})
