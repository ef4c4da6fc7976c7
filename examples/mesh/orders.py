"""``orders``: ``GET /orders/{id}`` calls ``http://billing/invoices/{id}`` through the mesh client
and answers both. The inbound trace and lane reach billing with no code here
(``mesh_middleware``); when billing's breaker is open or no instance of it is left, orders
answers its own fallback instead (200, ``"fallback"`` saying why, no invoice).

    python -m examples.mesh.orders --port 9201 --name stable
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import aiohttp
from aiohttp import web

from discovery.mesh import MeshClient, RetrySpec, ServicePolicy, mesh_middleware
from examples.mesh.service import registered, serve
from examples.mesh.telemetry import server_spans, tracing_ctx
from resilience.breaker import BreakerPolicy, CircuitOpen
from resilience.errors import DeadlineExceeded, NoInstanceAvailable

MESH = web.AppKey("mesh", MeshClient)

# Two retries to instances not tried yet on connect/disconnect (an instance that died), a
# breaker that opens after three failed calls and probes again after five seconds.
BILLING = ServicePolicy(
    retry=RetrySpec(retries=2),
    per_try_timeout=2.0,
    timeout=5.0,
    breaker=BreakerPolicy(fail_max=3, reset_timeout=5.0),
)


def make_app(name: str, port: int, lane: str | None) -> web.Application:
    served_by = {"orders": name, "lane": lane or "stable"}

    async def order(request: web.Request) -> web.Response:
        order_id = request.match_info["id"]
        mesh = request.app[MESH]

        def fallback(reason: str, **extra: object) -> web.Response:
            body = {"order": order_id, "served_by": served_by, "invoice": None}
            return web.json_response({**body, "fallback": reason, **extra})

        try:
            async with mesh.get(f"http://billing/invoices/{order_id}") as resp:
                status = resp.status
                invoice = await resp.json() if status == 200 else await resp.text()
        except CircuitOpen as exc:
            return fallback("breaker-open", retry_after=round(exc.retry_after, 1))
        except NoInstanceAvailable as exc:
            return fallback("no-instance", detail=str(exc))
        except (aiohttp.ClientError, TimeoutError, DeadlineExceeded) as exc:
            error = {"order": order_id, "error": f"billing failed: {type(exc).__name__}: {exc}"}
            return web.json_response(error, status=502)
        if status != 200:
            error = {"order": order_id, "error": f"billing answered {status}", "body": invoice}
            return web.json_response(error, status=502)
        return web.json_response({"order": order_id, "served_by": served_by, "invoice": invoice})

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def mesh_client(app: web.Application) -> AsyncIterator[None]:
        # CONSUL_HTTP_ADDR: billing is found in Consul; its CLIENT spans go to the global
        # provider tracing_ctx (before it in cleanup_ctx) has set.
        async with MeshClient.from_env(policies={"billing": BILLING}) as mesh:
            app[MESH] = mesh
            yield

    # server_spans first: the server span is current when mesh_middleware and the handler run.
    app = web.Application(middlewares=[server_spans("examples.mesh.orders"), mesh_middleware])
    app.router.add_get("/orders/{id}", order)
    app.router.add_get("/health", health)
    app.cleanup_ctx.append(tracing_ctx("orders"))
    app.cleanup_ctx.append(mesh_client)
    app.cleanup_ctx.append(registered("orders", name, port, lane))
    return app


def main(argv: Sequence[str] | None = None) -> None:
    serve("python -m examples.mesh.orders", make_app, argv)


if __name__ == "__main__":
    main()
