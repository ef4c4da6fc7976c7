"""East-west through ``discovery.mesh``: a plain asyncio program (no gateway) whose
``MeshClient`` calls a service's two real instances by name, from inside a handler that
``mesh_middleware`` gave the inbound trace and lane.

Run: ``python -m tests.eastwest.mesh_call``. It starts the instances and the calling service
on 127.0.0.1, makes a few calls and prints a JSON summary, including whether anything imported
``gateway`` (it must not).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

import aiohttp
from aiohttp import web

from discovery.instance import ServiceInstance
from discovery.mesh import MeshClient, mesh_middleware
from discovery.static import StaticRegistry
from tests.eastwest.call_two_instances import start

MESH = web.AppKey("mesh", MeshClient)


def billing(name: str) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "instance": name,
                "traceparent": request.headers.get("traceparent"),
                "baggage": request.headers.get("baggage"),
            }
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


def orders(mesh: MeshClient) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        async with request.app[MESH].get("http://billing/invoices/7") as resp:
            return web.json_response(await resp.json())

    app = web.Application(middlewares=[mesh_middleware])
    app[MESH] = mesh
    app.router.add_get("/order", handle)
    return app


async def main() -> dict[str, object]:
    stable, stable_port = await start(billing("stable"))
    canary, canary_port = await start(billing("canary"))
    registry = StaticRegistry(
        {
            "billing": [
                ServiceInstance("billing", "stable", "127.0.0.1", stable_port),
                ServiceInstance(
                    "billing", "canary", "127.0.0.1", canary_port, metadata={"lane": "canary"}
                ),
            ]
        }
    )
    summary: dict[str, object] = {}
    async with MeshClient(registry, rng=random.Random(3)) as mesh:
        service, port = await start(orders(mesh))
        trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        async with aiohttp.ClientSession() as session:
            plain = []
            for _ in range(4):
                async with session.get(f"http://127.0.0.1:{port}/order") as resp:
                    plain.append(await resp.json())
            async with session.get(
                f"http://127.0.0.1:{port}/order",
                headers={"traceparent": trace, "baggage": "lane=canary"},
            ) as resp:
                laned = await resp.json()
        await service.cleanup()
    await stable.cleanup()
    await canary.cleanup()
    summary["plain_answered_by"] = sorted({r["instance"] for r in plain})
    summary["laned_answered_by"] = laned["instance"]
    summary["laned_baggage"] = laned["baggage"]
    summary["laned_trace_id"] = laned["traceparent"].split("-")[1]
    summary["gateway_imported"] = any(
        m == "gateway" or m.startswith("gateway.") for m in sys.modules
    )
    return summary


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
