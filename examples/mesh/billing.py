"""``billing``: answers ``GET /invoices/{id}`` with who it is (instance and lane) and what trace
context reached it. Registers itself in Consul (``CONSUL_HTTP_ADDR``), in a lane when given.

    python -m examples.mesh.billing --port 9301 --name stable-1
    python -m examples.mesh.billing --port 9303 --name canary --lane canary
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from examples.mesh.service import registered, serve
from examples.mesh.telemetry import server_spans, tracing_ctx


def make_app(name: str, port: int, lane: str | None) -> web.Application:
    async def invoice(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "invoice": request.match_info["id"],
                "billing": name,
                "lane": lane or "stable",
                "traceparent": request.headers.get("traceparent"),
                "baggage": request.headers.getall("baggage", []),
            }
        )

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[server_spans("examples.mesh.billing")])
    app.router.add_get("/invoices/{id}", invoice)
    app.router.add_get("/health", health)
    app.cleanup_ctx.append(tracing_ctx("billing"))
    app.cleanup_ctx.append(registered("billing", name, port, lane))
    return app


def main(argv: Sequence[str] | None = None) -> None:
    serve("python -m examples.mesh.billing", make_app, argv)


if __name__ == "__main__":
    main()
