"""East-west with no gateway: a plain asyncio program that calls a service's two real
instances through ``discovery`` and ``resilience`` alone — the instance picker over a registry,
per-attempt accounting (outlier ejection), the budgeted retry loop and a circuit breaker —
with aiohttp's client as its transport.

Run: ``python -m tests.eastwest.call_two_instances``. It starts both instances itself on
127.0.0.1 (instance ``b`` answers 500), makes a bounded number of calls and prints a JSON
summary, including whether anything imported ``gateway`` (it must not).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from discovery.instance import ServiceInstance
from discovery.static import StaticRegistry
from resilience.balancer.round_robin import RoundRobin
from resilience.breaker import BreakerPolicy, CircuitOpen
from resilience.outlier import OutlierPolicy
from resilience.picker import InstancePicker
from resilience.retry import Retrier, RetryPolicy
from resilience.runtime import AttemptHooks, RuntimeSettings, ServiceRuntimes

SERVICE = "orders"
CALLS = 40


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    instance: str
    body: str


class OrdersClient:
    """What an east-west client is: pick, account, send, retry, all behind one breaker."""

    def __init__(self, session: aiohttp.ClientSession, registry: StaticRegistry) -> None:
        rng = random.Random(7)
        self.runtimes = ServiceRuntimes(
            RuntimeSettings(
                outlier=OutlierPolicy(consecutive_failures=3),
                breaker=BreakerPolicy(fail_max=3, reset_timeout=60.0),
            ),
            rng=rng,
        )
        self.runtime = self.runtimes.get(SERVICE)
        self._session = session
        self._picker = InstancePicker(SERVICE, registry.instances, self.runtime, RoundRobin(rng))
        self._hooks = AttemptHooks(self.runtime, self._picker.count)
        self.breaker = self.runtimes.breakers.get(SERVICE)
        self._retrier: Retrier[Reply] = Retrier(
            RetryPolicy(
                retries=2,
                retry_on_result=lambda reply: reply.status >= 500,
                retry_on_error=lambda exc: isinstance(exc, aiohttp.ClientError | OSError),
            ),
            rng=rng,
        )

    async def get(self, path: str) -> Reply:
        return await self.breaker.call(lambda: self._call(path), lambda r: r.status >= 500)

    async def _call(self, path: str) -> Reply:
        tried: set[str] = set()

        async def attempt(number: int) -> Reply:
            instance = self._picker.pick(tried, None)
            entered = self._hooks.begin(instance.instance_id)
            ok = False
            try:
                url = f"http://{instance.authority}{path}"
                async with self._session.get(url) as response:
                    reply = Reply(response.status, instance.instance_id, await response.text())
                ok = reply.status < 500
                return reply
            finally:
                self._hooks.outcome(instance.instance_id, ok)
                self._hooks.release(instance.instance_id, entered)

        return await self._retrier.run(attempt, service=SERVICE, budget=self.runtime.budget)


def instance_app(name: str, status: int) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=status, text=f"{name}:{request.path}")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


async def start(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def main() -> dict[str, object]:
    good, good_port = await start(instance_app("a", 200))
    bad, bad_port = await start(instance_app("b", 500))
    registry = StaticRegistry(
        {
            SERVICE: [
                ServiceInstance(SERVICE, "a", "127.0.0.1", good_port),
                ServiceInstance(SERVICE, "b", "127.0.0.1", bad_port),
            ]
        }
    )
    summary: dict[str, object] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        client = OrdersClient(session, registry)
        # Phase 1: b fails every call; retries go to a, and b is ejected after 3 in a row.
        replies = [await client.get(f"/orders/{i}") for i in range(CALLS)]
        summary["phase1_statuses"] = sorted({r.status for r in replies})
        summary["phase1_answered_by"] = sorted({r.instance for r in replies})
        summary["ejected"] = sorted(client.runtime.outlier.ejected())
        summary["retries"] = client.runtime.budget.stats()["retries"]
        # Phase 2: a goes away too; every call fails until the breaker opens and refuses
        # without touching the network.
        await good.cleanup()
        refused = failed = 0
        for i in range(10):
            try:
                await client.get(f"/late/{i}")
            except CircuitOpen:
                refused += 1
            except (aiohttp.ClientError, OSError):
                failed += 1
        summary["phase2_failed"] = failed
        summary["phase2_refused_by_breaker"] = refused
        summary["breaker"] = client.breaker.state
    await bad.cleanup()
    summary["gateway_imported"] = any(
        m == "gateway" or m.startswith("gateway.") for m in sys.modules
    )
    return summary


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
